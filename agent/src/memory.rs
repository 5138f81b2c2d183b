//! Handing freed heap back to the system after a burst of short-lived allocations.
//!
//! A run of a thousand checks, a config load or a report allocates tens of megabytes for a moment, spread over
//! the runtime's worker threads. glibc's malloc keeps what is freed in per-thread arenas for reuse, so a daemon
//! that ran one big phase would keep that memory resident until it exits. The agent idles between runs for
//! hours on small site hardware next to production traffic: after each such burst it asks malloc to return free
//! pages (`malloc_trim(0)`, which covers every arena and the free pages inside them, not just the top of the
//! heap). It costs well under a millisecond and is only called at the end of a run or a config load.

/// Return malloc's free pages to the kernel (glibc); nothing elsewhere.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_heap() {
    // SAFETY: malloc_trim takes a plain integer and has no preconditions; it only gives free memory of malloc's
    // own arenas back to the kernel, never memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Return malloc's free pages to the kernel (glibc); nothing elsewhere.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_heap() {}
