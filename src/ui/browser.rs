//! Opening the page in the partner's browser, where this machine has a way to: `xdg-open` on
//! Linux and the BSDs, `open` on macOS, `start` on Windows. None is needed: the address is
//! printed too. The address holds the token, and a command line can be read by every user of
//! the machine (`ps`), so the browser is pointed at a file that only its owner can read and
//! that sends it on, as Jupyter does.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Opens `url` in a browser, or says why not. Never waits for the browser.
pub fn open(url: &str) -> Result<(), String> {
    let file = redirect_file(url)?;
    let target = file.display().to_string();
    let mut cmd = opener();
    cmd.arg(&target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{:?} could not be run: {e}", cmd.get_program()))?;
    // Reaped in the background: xdg-open may wait for the browser it starts.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

fn opener() -> Command {
    if cfg!(target_os = "macos") {
        Command::new("open")
    } else if cfg!(windows) {
        let mut c = Command::new("cmd");
        c.args(["/C", "start", ""]);
        c
    } else {
        Command::new("xdg-open")
    }
}

/// A page in the data folder, its owner's alone, that sends the browser to `url`.
fn redirect_file(url: &str) -> Result<PathBuf, String> {
    let dir = crate::job::data_dir().join("ui");
    crate::journal::create_private_dir(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("open.html");
    let escaped = url.replace('&', "&amp;").replace('"', "&quot;");
    let html = format!(
        "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=\"0;url={escaped}\"><title>plbulk ui</title><a href=\"{escaped}\">Open plbulk ui</a>\n"
    );
    crate::atomic_write(&path, html.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}
