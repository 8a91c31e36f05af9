//! A minimal logger for the `log` crate: one line per record on standard error, with the
//! level, until the logging issue brings syslog targets and access logs.

use std::io::Write;

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        // What rustls logs is about one peer's handshake (an IP address sent as SNI, an
        // alert received): any client can cause it, once per connection, so it is shown
        // only with `-d`, never as a warning stream a client controls.
        if metadata.target().starts_with("rustls") {
            return log::max_level() >= log::LevelFilter::Debug && metadata.level() <= log::Level::Debug;
        }
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            // A closed stderr leaves nowhere to report to.
            let _ = writeln!(std::io::stderr().lock(), "[{}] {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

/// Installs the logger (once; later calls only change the level).
pub fn init(level: log::LevelFilter) {
    // A second call finds the logger already set, which is fine.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
