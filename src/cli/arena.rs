//! One malloc arena for the whole process.
//!
//! glibc gives each thread that allocates an arena of its own, and an arena keeps much of
//! what is freed in it. kayle-sync drives every request from one thread, and the blocking
//! pool's threads (sink files, the directory lock) mostly wait on the disk, so more arenas buy
//! no speed; but each keeps what a dotenv batch freed: at 10,000 endpoints, 3.5 MB of an
//! apply's peak. musl, which the release archives use, has no arenas.

/// Has every thread allocate from the main arena. Called before the runtime starts threads.
pub(super) fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter, under malloc's own lock; a failure (it
    // returns 0) leaves the default, which is only more memory.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
