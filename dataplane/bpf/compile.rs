// Shared by the build scripts of `dataplane` and `bench` (`include!`d by both): compiles
// a crate's BPF programs with `clang -O2 -g -target bpf`. Headers: `linux/bpf.h` from the
// system's kernel headers (`linux-libc-dev`, present with any C toolchain) and
// `bpf/bpf_helpers.h` from the libbpf that `libbpf-sys` builds (`DEP_BPF_INCLUDE`, which
// a crate gets by depending on `libbpf-sys` directly), so no package beyond `clang` is
// needed.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles `bpf/PROG.bpf.c` of the crate being built, for each of `programs`, into
/// `OUT_DIR/PROG.bpf.o`; `header` is the programs' shared header (a rebuild trigger),
/// `needs` says who needs clang in the error when it is missing.
fn compile_bpf(programs: &[&str], header: &str, needs: &str) -> Result<(), String> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let bpf_dir = manifest.join("bpf");
    let clang = env::var("BPF_CLANG").unwrap_or_else(|_| "clang".to_string());
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    println!(
        "cargo:rerun-if-changed={}",
        bpf_dir.join(header).display()
    );

    let libbpf_include = env::var("DEP_BPF_INCLUDE").map_err(|_| {
        "DEP_BPF_INCLUDE is not set: the crate must depend on libbpf-sys directly (it provides \
         bpf/bpf_helpers.h)"
            .to_string()
    })?;
    let mut includes = vec![PathBuf::from(libbpf_include), bpf_dir.clone()];
    // `-target bpf` drops the multiarch include directory where <asm/types.h> lives.
    if let Some(dir) = multiarch_include(&clang) {
        includes.push(dir);
    }

    for prog in programs {
        let src = bpf_dir.join(format!("{prog}.bpf.c"));
        let obj = out.join(format!("{prog}.bpf.o"));
        println!("cargo:rerun-if-changed={}", src.display());
        let mut cmd = Command::new(&clang);
        cmd.args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"]);
        for dir in &includes {
            cmd.arg("-I").arg(dir);
        }
        cmd.arg("-c").arg(&src).arg("-o").arg(&obj);
        let output = cmd.output().map_err(|e| {
            format!(
                "cannot run `{clang}` ({e}): {needs} clang with the BPF target (Debian: \
                 `apt-get install clang llvm`, see scripts/setup.sh), or set BPF_CLANG to a \
                 clang that has it"
            )
        })?;
        if !output.status.success() {
            return Err(format!(
                "`{clang}` failed to compile {} ({}):\n{}",
                src.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    Ok(())
}

/// `/usr/include/<multiarch>` (e.g. `x86_64-linux-gnu`) if it exists.
fn multiarch_include(clang: &str) -> Option<PathBuf> {
    let triple = Command::new(clang)
        .arg("-print-multiarch")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|t| !t.is_empty())
        .or_else(|| {
            env::var("CARGO_CFG_TARGET_ARCH")
                .ok()
                .map(|a| format!("{a}-linux-gnu"))
        })?;
    let dir = Path::new("/usr/include").join(triple);
    dir.is_dir().then_some(dir)
}
