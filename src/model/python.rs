//! Model layer: which processes of a tree are Python multiprocessing's, and how each worker was
//! started — read from the command lines alone (Python 3.14 made `forkserver` the default on
//! Linux: a worker forked from a fork server inherits nothing of the parent's data). Nothing is
//! guessed beyond what the command lines say: any other program has no role.

use std::collections::HashMap;

use super::accounting::{ProcessRow, Tree};

/// How a multiprocessing worker was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMethod {
    /// Forked from its parent: it shares the parent's pages copy-on-write.
    Fork,
    /// Forked from a fork server, which never built the parent's data.
    Forkserver,
    /// A fresh interpreter: it imports `__main__` again and inherits nothing.
    Spawn,
}

impl StartMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            StartMethod::Fork => "fork",
            StartMethod::Forkserver => "forkserver",
            StartMethod::Spawn => "spawn",
        }
    }
}

/// What a process is to Python's multiprocessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PythonRole {
    Worker(StartMethod),
    /// The fork server (`multiprocessing.forkserver`), a helper.
    ForkServer,
    /// The resource tracker (`multiprocessing.resource_tracker`), a helper.
    ResourceTracker,
}

impl PythonRole {
    pub fn as_str(self) -> &'static str {
        match self {
            PythonRole::Worker(_) => "worker",
            PythonRole::ForkServer => "fork_server",
            PythonRole::ResourceTracker => "resource_tracker",
        }
    }

    pub fn start_method(self) -> Option<StartMethod> {
        match self {
            PythonRole::Worker(method) => Some(method),
            _ => None,
        }
    }

    /// What the table's NOTE and the dashboard's processes say of the process, in a few words.
    pub fn label(self) -> &'static str {
        match self {
            PythonRole::Worker(StartMethod::Fork) => "forked worker",
            PythonRole::Worker(StartMethod::Forkserver) => "fork-server worker",
            PythonRole::Worker(StartMethod::Spawn) => "spawned worker",
            PythonRole::ForkServer => "fork server",
            PythonRole::ResourceTracker => "resource tracker",
        }
    }

    /// What the detail pane says of the process.
    pub fn describe(self) -> &'static str {
        match self {
            PythonRole::Worker(StartMethod::Fork) => "Python worker, forked",
            PythonRole::Worker(StartMethod::Forkserver) => "Python worker, from a fork server",
            PythonRole::Worker(StartMethod::Spawn) => "Python worker, spawned",
            PythonRole::ForkServer => "Python fork server (a helper)",
            PythonRole::ResourceTracker => "Python resource tracker (a helper)",
        }
    }
}

fn says(row: &ProcessRow, code: &str) -> bool {
    row.cmdline.as_ref().is_some_and(|c| c.iter().any(|arg| arg.contains(code)))
}

fn is_python(row: &ProcessRow) -> bool {
    row.cmdline.as_ref().and_then(|c| c.first()).is_some_and(|program| {
        let base = program.rsplit('/').next().unwrap_or(program);
        base.starts_with("python") || base == "pypy3"
    })
}

/// The role of every multiprocessing process of every tree of `accounting`, by pid.
pub fn all_roles(accounting: &super::Accounting) -> HashMap<u32, PythonRole> {
    accounting.trees.iter().flat_map(roles).collect()
}

/// The role of every multiprocessing process of `tree`, by pid.
pub fn roles(tree: &Tree) -> HashMap<u32, PythonRole> {
    let by_pid: HashMap<u32, &ProcessRow> = tree.processes.iter().map(|p| (p.pid, p)).collect();
    let own = |row: &ProcessRow| -> Option<PythonRole> {
        if says(row, "from multiprocessing.resource_tracker import main") {
            Some(PythonRole::ResourceTracker)
        } else if says(row, "from multiprocessing.forkserver import main") {
            Some(PythonRole::ForkServer)
        } else if says(row, "from multiprocessing.spawn import spawn_main") {
            Some(PythonRole::Worker(StartMethod::Spawn))
        } else {
            None
        }
    };
    let mut roles = HashMap::new();
    for row in &tree.processes {
        let parent = by_pid.get(&row.ppid).copied().filter(|_| row.depth > 0);
        let role = match (own(row), parent) {
            // A fork server's children carry its command line: they are its workers.
            (Some(PythonRole::ForkServer), Some(p)) if own(p) == Some(PythonRole::ForkServer) => {
                Some(PythonRole::Worker(StartMethod::Forkserver))
            }
            (Some(role), _) => Some(role),
            // A Python process with its parent's very command line was forked from it (a fork
            // does not exec); a helper's is not a worker.
            (None, Some(p))
                if is_python(row)
                    && own(p).is_none()
                    && p.cmdline.is_some()
                    && p.cmdline == row.cmdline =>
            {
                Some(PythonRole::Worker(StartMethod::Fork))
            }
            _ => None,
        };
        if let Some(role) = role {
            roles.insert(row.pid, role);
        }
    }
    roles
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::process;
    use crate::model::{Grouping, account, testing};

    fn with_cmdline(pid: u32, ppid: u32, argv: &[&str]) -> crate::model::ProcessSample {
        let mut p = process(pid, ppid).name("python3").build();
        p.cmdline = Some(argv.iter().map(|a| a.to_string()).collect());
        p
    }

    #[test]
    fn start_methods_from_command_lines() {
        let main = ["python3", "pool.py"];
        let server = [
            "/usr/bin/python3",
            "-c",
            "from multiprocessing.forkserver import main; main(8, 9, ['__main__'])",
        ];
        let tracker =
            ["python3", "-c", "from multiprocessing.resource_tracker import main;main(6)"];
        let spawned = [
            "python3",
            "-c",
            "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7)",
            "--multiprocessing-fork",
        ];
        let snapshot = testing::snapshot(vec![
            with_cmdline(10, 1, &main),
            with_cmdline(11, 10, &main),
            with_cmdline(12, 10, &tracker),
            with_cmdline(13, 10, &server),
            with_cmdline(14, 13, &server),
            with_cmdline(15, 10, &spawned),
            with_cmdline(16, 10, &["sh", "-c", "ls"]),
            with_cmdline(17, 16, &["sh", "-c", "ls"]),
        ]);
        let accounting = account(&snapshot, &Grouping::Roots(vec![10]));
        let roles = roles(&accounting.trees[0]);
        assert_eq!(roles.get(&10), None, "the main process is no worker");
        assert_eq!(roles[&11], PythonRole::Worker(StartMethod::Fork));
        assert_eq!(roles[&12], PythonRole::ResourceTracker);
        assert_eq!(roles[&13], PythonRole::ForkServer);
        assert_eq!(roles[&14], PythonRole::Worker(StartMethod::Forkserver));
        assert_eq!(roles[&15], PythonRole::Worker(StartMethod::Spawn));
        assert_eq!(roles.get(&17), None, "a forked shell is not Python: left alone");
    }
}
