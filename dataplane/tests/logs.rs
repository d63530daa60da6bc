//! The binary's logs: `tracing` events on stderr, filtered by `--log-level`, else
//! `VSWITCH_LOG`, else `RUST_LOG`; a command's output stays on stdout whatever the
//! level. (`vswitch run` with a missing file ends with one error event, which needs no
//! root.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_vswitch");

fn vswitch(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("VSWITCH_LOG")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const MISSING: &str = "/nonexistent/vswitch-logs-test.toml";

#[test]
fn run_failure_is_an_error_event_the_level_filters() {
    let o = vswitch(&["run", "--config", MISSING], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(" ERROR "), "{err}");
    assert!(
        err.contains("vswitch-logs-test.toml: cannot read the file"),
        "{err}"
    );
    // Not a terminal: no colours.
    assert!(!err.contains('\u{1b}'), "{err:?}");
    for (args, env, shown) in [
        (&["--log-level", "off"][..], &[][..], false),
        (&["--log-level", "error"], &[("VSWITCH_LOG", "off")], true),
        (&[], &[("VSWITCH_LOG", "off")], false),
        (&[], &[("RUST_LOG", "off")], false),
        (&[], &[("VSWITCH_LOG", "error"), ("RUST_LOG", "off")], true),
        (&[], &[("VSWITCH_LOG", ""), ("RUST_LOG", "off")], false),
    ] {
        let mut a = args.to_vec();
        a.extend(["run", "--config", MISSING]);
        let o = vswitch(&a, env);
        assert_eq!(o.status.code(), Some(1), "{a:?} {env:?}");
        assert_eq!(
            stderr(&o).contains("cannot read the file"),
            shown,
            "{a:?} {env:?}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_bad_filter_is_refused_and_names_its_source() {
    let o = vswitch(&["ctl", "show"], &[("VSWITCH_LOG", "a=b=c")]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("VSWITCH_LOG: \"a=b=c\" is not a log filter"),
        "{err}"
    );
    let o = vswitch(&["--log-level", "loud", "ctl", "show"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn output_stays_on_stdout_at_any_level() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vswitch.toml");
    let example = example.to_str().unwrap();
    let quiet = vswitch(&["check-config", example], &[]);
    let loud = vswitch(&["--log-level", "trace", "check-config", example], &[]);
    assert!(quiet.status.success() && loud.status.success());
    assert_eq!(quiet.stdout, loud.stdout);
    assert!(String::from_utf8_lossy(&quiet.stdout).contains("[switch]"));
}
