//! Noticing that files changed: a poll of their metadata, debounced.
//!
//! Every tick each watched path is looked at (`stat`, following symlinks; a directory given
//! with `--config` stands for its `*.yml`/`*.yaml` files). A set of files counts as changed
//! once it differs from what was last applied *and* has looked the same for one whole tick,
//! so a file still being written is not read half-way. Polling rather than inotify: it also
//! sees editors that replace files, Kubernetes' symlink swaps and network mounts, and costs
//! a few `stat` calls a tick (decision 0023).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often watched files are looked at. A change is applied one to two ticks after the
/// writer stops.
pub const TICK: Duration = Duration::from_millis(250);

/// What one file looked like; `None` in a [`Snapshot`] when it did not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    /// Device and inode: a file replaced by rename is another file even with the same
    /// size and time.
    identity: (u64, u64),
}

/// What a set of watched paths looked like at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot(Vec<Option<Seen>>);

impl Snapshot {
    /// Looks at `paths` now.
    pub fn take(paths: &[PathBuf]) -> Self {
        let mut seen = Vec::with_capacity(paths.len());
        for path in paths {
            if path.is_dir() {
                seen.extend(yaml_files(path).into_iter().map(|p| look(&p)));
            } else {
                seen.push(look(path));
            }
        }
        Self(seen)
    }
}

fn look(path: &Path) -> Option<Seen> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let identity = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let identity = (0, 0);
    Some(Seen { path: path.to_path_buf(), len: meta.len(), modified: meta.modified().ok(), identity })
}

/// The `*.yml` and `*.yaml` files of `dir`, in name order (as the loader merges them).
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Debounces one set of watched paths.
#[derive(Debug, Default)]
pub struct Debounce {
    applied: Snapshot,
    previous: Snapshot,
}

impl Debounce {
    /// Starts from what is in force now.
    pub fn new(applied: Snapshot) -> Self {
        Self { previous: applied.clone(), applied }
    }

    /// Feeds the tick's snapshot; returns it when it should be applied now: it differs
    /// from what was applied and equals the previous tick's.
    pub fn tick(&mut self, now: Snapshot) -> Option<Snapshot> {
        let settled = now == self.previous && now != self.applied;
        self.previous = now.clone();
        settled.then_some(now)
    }

    /// Records that `snapshot` is in force (the reload read these files).
    pub fn applied(&mut self, snapshot: Snapshot) {
        self.applied = snapshot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bump(path: &Path, by: u64) {
        let at = SystemTime::now() + Duration::from_secs(by);
        std::fs::File::options().write(true).open(path).unwrap().set_modified(at).unwrap();
    }

    #[test]
    fn a_change_is_applied_once_it_has_settled() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("configuration.yml");
        std::fs::write(&file, "a: 1\n").unwrap();
        let paths = vec![file.clone()];
        let mut debounce = Debounce::new(Snapshot::take(&paths));
        assert_eq!(debounce.tick(Snapshot::take(&paths)), None, "nothing changed");

        std::fs::write(&file, "a: 2\n").unwrap();
        bump(&file, 5);
        assert_eq!(debounce.tick(Snapshot::take(&paths)), None, "first sight: maybe still being written");
        std::fs::write(&file, "a: 22\n").unwrap();
        bump(&file, 6);
        assert_eq!(debounce.tick(Snapshot::take(&paths)), None, "changed again: still moving");
        let settled = debounce.tick(Snapshot::take(&paths)).expect("the same for a whole tick");
        debounce.applied(settled);
        assert_eq!(debounce.tick(Snapshot::take(&paths)), None, "applied once");
    }

    #[test]
    fn replaced_added_and_removed_files_count() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yml"), "a: 1\n").unwrap();
        let paths = vec![dir.path().to_path_buf()];
        let before = Snapshot::take(&paths);

        std::fs::write(dir.path().join("b.yaml"), "b: 1\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not configuration").unwrap();
        let added = Snapshot::take(&paths);
        assert_ne!(before, added, "a new file in a configuration directory");

        let replacement = dir.path().join(".a.yml.tmp");
        std::fs::write(&replacement, "a: 1\n").unwrap();
        let old = std::fs::metadata(dir.path().join("a.yml")).unwrap().modified().unwrap();
        std::fs::File::options().write(true).open(&replacement).unwrap().set_modified(old).unwrap();
        std::fs::rename(&replacement, dir.path().join("a.yml")).unwrap();
        assert_ne!(added, Snapshot::take(&paths), "same size and time, but another file");

        let missing = vec![dir.path().join("gone.yml")];
        assert_eq!(Snapshot::take(&missing), Snapshot(vec![None]));
    }
}
