//! Shared by the benches: a tree of many small processes.

use std::process::Command;
use std::time::Duration;

/// A shell with `n` sleeping children, killed (the whole group) on drop.
pub struct Sleepers(pub std::process::Child);

impl Sleepers {
    pub fn spawn(n: u64) -> Sleepers {
        use std::io::{BufRead, BufReader};
        use std::os::unix::process::CommandExt;
        let script = format!("for i in $(seq {n}); do sleep 3600 & done; echo ready; wait");
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        std::thread::sleep(Duration::from_secs(3));
        Sleepers(child)
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.0.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}
