//! Live reload of the configuration parts that can change under running requests: the
//! access-control rules (with `definitions.network`), the users file, and the mail
//! templates of `notifier.template_path`.
//!
//! Two triggers: `SIGHUP`, and a poll of every file given with `--config` (or
//! `X_AUTHELIA_CONFIG`), the template overrides and, with
//! `authentication_backend.file.watch`, the users file ([`watch`]). A reload loads and
//! validates the whole configuration as at startup; anything wrong and nothing changes:
//! each problem is logged with its key path and the running rules stay (fail closed: a
//! half-edited file never replaces rules). Otherwise the new rules and templates are built
//! first and then put in force, each in one atomic swap, so no request is dropped or judged
//! by a mix. Changed keys that only a restart applies are named in a warning. Every reload
//! is logged and counted in `portcullis_config_reloads_total{source,result}`.

mod restart;
pub mod watch;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::access_control::AccessControl;
use crate::config::{self, LoadOptions};
use crate::server::App;

pub use restart::keys_needing_restart;

/// What asked for a reload (logged with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// `SIGHUP`.
    Signal,
    /// A watched file changed.
    FileChange,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Signal => "SIGHUP",
            Self::FileChange => "file change",
        }
    }
}

/// Reloads the running application's reloadable parts from the files it started with.
pub struct Reloader {
    app: Arc<App>,
    options: LoadOptions,
    /// The configuration the process runs with, serialized: restart-only keys are compared
    /// against it, so a change stays reported until the restart that applies it.
    running: serde_json::Value,
    /// `notifier.template_path` in force: the watched template files follow it.
    template_path: Mutex<String>,
    /// One reload at a time (a signal and a file change may coincide).
    busy: Mutex<()>,
    /// The watched files as the last reload that changed `notifier.template_path` found
    /// them, taken just before it read the new template files: for the file watch.
    read_with_new_templates: Mutex<Option<watch::Snapshot>>,
}

impl Reloader {
    /// A reloader for `app`, loading with the `options` it was started with.
    pub fn new(app: Arc<App>, options: LoadOptions) -> Self {
        let running = serde_json::to_value(&*app.config).unwrap_or_default();
        let template_path = Mutex::new(app.config.notifier.template_path.clone());
        Self { app, options, running, template_path, busy: Mutex::new(()), read_with_new_templates: Mutex::new(None) }
    }

    /// The files whose change reloads the configuration: the `--config` files (directories
    /// stand for their YAML files) and the template overrides.
    pub fn configuration_files(&self) -> Vec<PathBuf> {
        let template_path = self.template_path.lock().map(|p| p.clone()).unwrap_or_default();
        self.files_with_templates(&template_path)
    }

    fn files_with_templates(&self, template_path: &str) -> Vec<PathBuf> {
        let mut paths = self.options.files.clone();
        paths.extend(crate::notifier::Notifier::template_files(template_path));
        paths
    }

    /// What the last reload that changed `notifier.template_path` read, taken once.
    fn take_read_with_new_templates(&self) -> Option<watch::Snapshot> {
        self.read_with_new_templates.lock().ok().and_then(|mut read| read.take())
    }

    /// Loads and validates the configuration again and puts its reloadable parts in force,
    /// or keeps everything as it is when anything is wrong. Blocking (reads files). Returns
    /// whether the new configuration is in force.
    pub fn reload_configuration(&self, trigger: Trigger) -> bool {
        let _one = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let applied = self.apply(trigger);
        crate::telemetry::config_reload("configuration", applied);
        applied
    }

    fn apply(&self, trigger: Trigger) -> bool {
        let trigger = trigger.as_str();
        let loaded = match config::load(&self.options) {
            Ok(loaded) => loaded,
            Err(e) => {
                for problem in &e.problems {
                    tracing::error!(key = %problem.path, trigger, "configuration reload: {problem}");
                }
                tracing::error!(
                    problems = e.problems.len(),
                    trigger,
                    "configuration reload refused: the running configuration stays in force"
                );
                return false;
            }
        };
        let new = loaded.config;
        // Built before anything is swapped: all or nothing.
        let rules = match AccessControl::compile(&new) {
            Ok(rules) => rules,
            Err(problem) => {
                tracing::error!(trigger, "configuration reload: {problem}");
                tracing::error!(trigger, "configuration reload refused: the running configuration stays in force");
                return false;
            }
        };
        let running_templates = self.template_path.lock().map(|p| p.clone()).unwrap_or_default();
        if new.notifier.template_path != running_templates {
            // Taken before the new templates are read, so that one written meanwhile
            // (right after the path was set) differs from it and is read on a later tick.
            let read = watch::Snapshot::take(&self.files_with_templates(&new.notifier.template_path));
            if let Ok(mut slot) = self.read_with_new_templates.lock() {
                *slot = Some(read);
            }
        }
        if let Err(problem) = self.app.services.notifier.reload_templates(&new.notifier.template_path) {
            tracing::error!(key = "notifier.template_path", trigger, "configuration reload: {problem}");
            tracing::error!(trigger, "configuration reload refused: the running configuration stays in force");
            return false;
        }
        let count = rules.len();
        let default_policy = rules.default_policy();
        self.app.access_control.replace(rules);
        if let Ok(mut path) = self.template_path.lock() {
            path.clone_from(&new.notifier.template_path);
        }
        let restart = serde_json::to_value(&new).map(|v| keys_needing_restart(&self.running, &v)).unwrap_or_default();
        if !restart.is_empty() {
            tracing::warn!(
                keys = %restart.join(", "),
                "configuration reload: these keys changed but need a restart; their running values stay until then"
            );
        }
        tracing::info!(trigger, rules = count, %default_policy, "configuration reloaded");
        self.reload_users_file();
        true
    }

    /// Reads the users file again if it changed (users-file backend only); on an error the
    /// users in force stay. Blocking.
    pub fn reload_users_file(&self) {
        let Some(file) = self.app.services.users.file() else { return };
        match file.reload_if_changed() {
            Ok(false) => {}
            Ok(true) => {
                crate::telemetry::config_reload("users_file", true);
                tracing::info!(users = file.snapshot().len(), "users file reloaded");
            }
            Err(e) => {
                crate::telemetry::config_reload("users_file", false);
                tracing::error!("{e}; keeping the previous users");
            }
        }
    }

    /// The users file, when it is the backend and `authentication_backend.file.watch` asks
    /// for it to be watched.
    fn watched_users_file(&self) -> Option<PathBuf> {
        let file = self.app.config.authentication_backend.file.as_ref().filter(|f| f.watch)?;
        self.app.services.users.file()?;
        file.path.clone().map(PathBuf::from)
    }
}

/// Starts the triggers for `app`: a `SIGHUP` handler on the runtime and the watch on a
/// thread of its own (it only sleeps and looks at files). Both live as long as the process.
pub fn start(app: Arc<App>, options: LoadOptions) -> Arc<Reloader> {
    let reloader = Arc::new(Reloader::new(app, options));
    on_hangup(reloader.clone());
    let watcher = reloader.clone();
    let spawned = std::thread::Builder::new().name("config-watch".into()).spawn(move || watch_forever(&watcher));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the configuration watch; SIGHUP still reloads");
    }
    reloader
}

#[cfg(unix)]
fn on_hangup(reloader: Arc<Reloader>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot handle SIGHUP; configuration files are still watched");
            return;
        }
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP received: reloading the configuration");
            let reloader = reloader.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if !reloader.reload_configuration(Trigger::Signal) {
                    // The users file is independent of the configuration files.
                    reloader.reload_users_file();
                }
            })
            .await;
        }
    });
}

#[cfg(not(unix))]
fn on_hangup(_: Arc<Reloader>) {}

/// Looks at the watched files every [`watch::TICK`] and reloads what settled after a
/// change.
fn watch_forever(reloader: &Reloader) {
    use watch::{Debounce, Snapshot};
    let mut configuration = Debounce::new(Snapshot::take(&reloader.configuration_files()));
    let users_path = reloader.watched_users_file();
    let users_paths: Vec<PathBuf> = users_path.into_iter().collect();
    let mut users = Debounce::new(Snapshot::take(&users_paths));
    loop {
        std::thread::sleep(watch::TICK);
        let paths = reloader.configuration_files();
        if let Some(settled) = configuration.tick(Snapshot::take(&paths)) {
            reloader.reload_configuration(Trigger::FileChange);
            // Files that changed again while being read are not marked applied: the
            // next ticks see them settle and reload again.
            let after_paths = reloader.configuration_files();
            let after = Snapshot::take(&after_paths);
            if after_paths != paths {
                // The template files changed with the configuration: in force is what the
                // reload found just before reading them, not what is there now.
                configuration.applied(reloader.take_read_with_new_templates().unwrap_or(after));
            } else if after == settled {
                configuration.applied(after);
            }
        }
        if !users_paths.is_empty()
            && let Some(settled) = users.tick(Snapshot::take(&users_paths))
        {
            reloader.reload_users_file();
            users.applied(settled);
        }
    }
}
