//! The status page (`GET /` on the metrics port) after a known workload: the HTML holds the
//! figures an operator checks first and loads nothing from elsewhere, and headless Chromium
//! (Debian's `chromium`) renders it to a screenshot of the requested size that is not blank,
//! with the same figures in the DOM it built.
//!
//! Redis has no metrics port, so under `SHOAL_TEST_AGAINST=redis` these tests are skipped.

use std::fs::{self, File};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shoal_testkit::http;
use shoal_testkit::server::{free_port, make_temp_dir};
use shoal_testkit::{render, target_kind, RawClient, ServerKind, ServerProcess};

/// Start attempts when a probed metrics port was taken before the server bound it.
const START_ATTEMPTS: usize = 5;

/// How long one Chromium run may take before it is killed. A run takes a second or two; the
/// margin is for a loaded two-core machine, and a hung browser fails the test instead of
/// stalling the suite.
const CHROMIUM_DEADLINE: Duration = Duration::from_secs(60);

/// The screenshot's size, in CSS pixels at a device scale factor of 1.
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 800;

/// How many times larger than an empty page's the status page's compressed pixels must be.
/// The status page compresses to about ten times an empty page's size; a page that rendered
/// nothing (or only its background) would be within a small factor of the empty one.
const NOT_BLANK_FACTOR: usize = 4;

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn status_page_shows_the_key_figures_and_nothing_external() {
    let Some(shoal) = Shoal::start() else {
        return;
    };
    let _client = shoal.run_known_workload();
    let response = http::get(shoal.metrics, "/").expect("GET /");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = response.text();
    check_figures(&page);
    assert!(
        page.contains("<meta http-equiv=\"refresh\""),
        "the page does not refresh itself"
    );
    let processed = between(&page, "<p class=\"sub\">", " commands processed")
        .and_then(|n| n.parse::<u64>().ok());
    // 42 SET and 4 GET, plus the harness's readiness probes.
    assert!(processed.is_some_and(|n| n >= 46), "{processed:?}");

    // Self-contained: no absolute URL anywhere, and every reference stays on this server.
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "an external URL in {page}"
    );
    for attribute in ["src=\"", "href=\""] {
        for (i, _) in page.match_indices(attribute) {
            let target = &page[i + attribute.len()..];
            assert!(
                target.starts_with('/') && !target.starts_with("//"),
                "a reference to elsewhere: {}",
                &target[..target.len().min(60)]
            );
        }
    }
    for loader in ["url(", "@import", "<script", "<link", "<img", "<iframe"] {
        assert!(
            !page.contains(loader),
            "the page loads a resource: {loader}"
        );
    }
}

#[test]
fn status_page_renders_in_headless_chromium() {
    let Some(shoal) = Shoal::start() else {
        return;
    };
    let chromium = chromium();
    let _client = shoal.run_known_workload();
    let dir = make_temp_dir("chromium").expect("temp dir");

    let url = format!("http://{}/", shoal.metrics);
    // An empty page rendered the same way is the measure of "blank". The two browsers run side
    // by side: each spends most of its second starting up.
    let (page, empty) = std::thread::scope(|s| {
        let empty = s.spawn(|| render_in_chromium(&chromium, "data:text/html,", &dir, "empty"));
        let page = render_in_chromium(&chromium, &url, &dir, "status");
        (
            page,
            empty.join().expect("the empty page's render panicked"),
        )
    });
    // The DOM Chromium built from the live page, not the page as sent, holds the figures.
    check_figures(&page.dom);
    assert!(
        page.dom.contains("<title>Shoal ready</title>"),
        "{}",
        page.dom
    );
    let status = Png::parse(&page.png).unwrap_or_else(|e| panic!("status.png: {e}"));
    assert_eq!((status.width, status.height), (WIDTH, HEIGHT));
    let empty = Png::parse(&empty.png).unwrap_or_else(|e| panic!("empty.png: {e}"));
    assert_eq!((empty.width, empty.height), (WIDTH, HEIGHT));
    assert!(
        status.idat_bytes > NOT_BLANK_FACTOR * empty.idat_bytes,
        "the status page looks blank: {} bytes of pixels, an empty page {}",
        status.idat_bytes,
        empty.idat_bytes
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn png_parser_checks_structure_and_checksums() {
    // A 1x1 RGB image with one chunk of compressed pixels, built by hand.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let chunk = |png: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let mut checked = kind.to_vec();
        checked.extend_from_slice(data);
        png.extend_from_slice(&crc32(&checked).to_be_bytes());
    };
    chunk(&mut png, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
    chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x01, 0x63, 0x60, 0, 0, 0, 4, 0, 1],
    );
    chunk(&mut png, b"IEND", &[]);
    let parsed = Png::parse(&png).expect("valid");
    assert_eq!((parsed.width, parsed.height, parsed.idat_bytes), (1, 1, 10));
    // The well-known check value of CRC-32.
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);

    let mut corrupt = png.clone();
    corrupt[30] ^= 1;
    assert!(Png::parse(&corrupt).unwrap_err().contains("checksum"));
    assert!(Png::parse(&png[..png.len() - 12])
        .unwrap_err()
        .contains("IEND"));
    assert!(Png::parse(b"GIF89a").unwrap_err().contains("signature"));
}

// ---------------------------------------------------------------------------------------------
// The server, its workload and the figures it must show
// ---------------------------------------------------------------------------------------------

/// Shoal with its metrics port open.
struct Shoal {
    server: ServerProcess,
    metrics: SocketAddr,
}

impl Shoal {
    /// Starts Shoal with `--metrics-port` on a free port, retrying on a new port when the
    /// probed one was taken in the meantime; None under `SHOAL_TEST_AGAINST=redis`.
    fn start() -> Option<Shoal> {
        let kind = target_kind(option_env!("CARGO_BIN_EXE_shoal-server"));
        if matches!(kind, ServerKind::Redis) {
            eprintln!("skipped: Redis has no metrics port");
            return None;
        }
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port().expect("free port");
            let port_arg = port.to_string();
            match ServerProcess::start(kind.clone(), &["--metrics-port", &port_arg]) {
                Ok(server) => {
                    let metrics = SocketAddr::from(([127, 0, 0, 1], port));
                    return Some(Shoal { server, metrics });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last_err = Some(e),
                Err(e) => panic!("shoal did not start: {e}"),
            }
        }
        panic!("shoal did not start: {last_err:?}");
    }

    /// Stores 42 keys, 3 of them with a time to live, then makes 3 lookups that hit and 1
    /// that misses. Returns the client, which must stay connected while the page is read so
    /// that the page counts it.
    fn run_known_workload(&self) -> RawClient {
        let mut c = RawClient::connect(self.server.addr()).expect("connect");
        let mut check = |command: &str, expected: &str| {
            let args: Vec<&[u8]> = command.split(' ').map(str::as_bytes).collect();
            let reply = c
                .command(&args)
                .unwrap_or_else(|e| panic!("> {command}: {e}"));
            assert_eq!(render(&reply), expected, "> {command}");
        };
        for i in 0..39 {
            check(&format!("SET key:{i} v{i}"), "OK");
        }
        for i in 0..3 {
            check(&format!("SET session:{i} s EX 3600"), "OK");
        }
        for i in 0..3 {
            check(&format!("GET key:{i}"), &format!("\"v{i}\""));
        }
        check("GET key:missing", "(nil)");
        c
    }
}

/// Checks the figures the workload fixes, and the form of those it cannot (latency, uptime,
/// memory), in a page as served or as Chromium serialised its DOM.
fn check_figures(page: &str) {
    let figure = |id: &str| -> String {
        between(page, &format!("<dd id=\"{id}\">"), "</dd>")
            .unwrap_or_else(|| panic!("no figure {id} in {page}"))
            .to_string()
    };
    let exact = [
        ("role", "master"),
        ("state", "ready"),
        ("keys", "42 (3 with a TTL)"),
        ("hit-ratio", "75.0 %"),
        ("clients", "1 connected, 0 blocked"),
        ("maxmemory", "no limit"),
        ("replication", "master, 0 replicas"),
        ("cluster", "disabled"),
    ];
    for (id, want) in exact {
        assert_eq!(figure(id), want, "figure {id}");
    }

    // p50 / p95 / p99, each in µs or ms, positive and in order.
    let latency = figure("latency");
    let micros: Vec<f64> = latency
        .split(" / ")
        .map(|part| match part.split_once(' ') {
            Some((n, "µs")) => n.parse::<f64>().ok(),
            Some((n, "ms")) => n.parse::<f64>().ok().map(|ms| ms * 1000.0),
            _ => None,
        })
        .collect::<Option<_>>()
        .unwrap_or_else(|| panic!("latency figure {latency:?}"));
    assert_eq!(micros.len(), 3, "latency figure {latency:?}");
    assert!(
        micros[0] > 0.0 && micros[0] <= micros[1] && micros[1] <= micros[2],
        "latency figure {latency:?}"
    );

    let uptime = figure("uptime");
    assert!(
        uptime.ends_with('s') && uptime.starts_with(|c: char| c.is_ascii_digit()),
        "uptime figure {uptime:?}"
    );
    for id in ["memory", "rss"] {
        let value = figure(id);
        let unit = value
            .split_once(' ')
            .map(|(n, unit)| (n.parse::<f64>(), unit));
        assert!(
            matches!(unit, Some((Ok(n), "B" | "KiB" | "MiB" | "GiB")) if n > 0.0),
            "{id} figure {value:?}"
        );
    }
    let ops = figure("ops");
    assert!(ops.parse::<u64>().is_ok(), "ops figure {ops:?}");
}

/// The text between the first `start` and the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

// ---------------------------------------------------------------------------------------------
// Headless Chromium
// ---------------------------------------------------------------------------------------------

/// What one Chromium run produced: the screenshot and the serialised DOM.
struct Rendered {
    png: Vec<u8>,
    dom: String,
}

/// The Chromium executable: `$CHROMIUM` if set, else `chromium` on the PATH.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromium is not installed: this test renders the status page in Debian's \
                 headless Chromium. Install it with \
                 `apt-get install -y --no-install-recommends chromium` (.ci/run does), or point \
                 $CHROMIUM at a Chromium binary."
            )
        })
}

/// Loads `url` in headless Chromium at the test's window size, and returns the screenshot and
/// the DOM. The browser gets its own profile directory under `dir`, so runs never share state
/// or a profile lock, and runs in a process group of its own so that a hung browser is killed
/// along with every helper process it started.
fn render_in_chromium(chromium: &Path, url: &str, dir: &Path, name: &str) -> Rendered {
    let screenshot = dir.join(format!("{name}.png"));
    let dom_path = dir.join(format!("{name}.html"));
    let log_path = dir.join(format!("{name}.log"));
    let mut child = Command::new(chromium)
        .arg("--headless")
        // The sandbox needs user namespaces, which neither root nor most CI containers get;
        // the page is our own, so running it unsandboxed is safe.
        .arg("--no-sandbox")
        .arg("--disable-gpu")
        .arg("--hide-scrollbars")
        .arg("--no-first-run")
        .arg("--force-device-scale-factor=1")
        .arg(format!(
            "--user-data-dir={}",
            dir.join(format!("{name}-profile")).display()
        ))
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        // Files rather than pipes: nothing has to drain them while the browser runs.
        .stdout(File::create(&dom_path).expect("create the DOM file"))
        // Chromium complains about DBus and the GPU on a headless machine; the log is only
        // shown when the run fails.
        .stderr(File::create(&log_path).expect("create the log file"))
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
    let log_tail = || {
        let log = fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    };
    let deadline = Instant::now() + CHROMIUM_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the process group this test created for the browser, whose
            // leader has not been reaped yet, so the group id cannot name anything else.
            unsafe {
                libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
            }
            let _ = child.wait();
            panic!(
                "chromium did not finish {url} within {CHROMIUM_DEADLINE:?}; log:\n{}",
                log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "chromium failed ({status}) on {url}; log:\n{}",
        log_tail()
    );
    let png = fs::read(&screenshot)
        .unwrap_or_else(|e| panic!("no screenshot of {url} ({e}); log:\n{}", log_tail()));
    let dom = fs::read_to_string(&dom_path).expect("read the DOM");
    Rendered { png, dom }
}

// ---------------------------------------------------------------------------------------------
// PNG structure
// ---------------------------------------------------------------------------------------------

/// What the test needs from a PNG file, read from its chunks without decoding the pixels.
#[derive(Debug)]
struct Png {
    width: u32,
    height: u32,
    /// Total length of the compressed pixel data (the IDAT chunks).
    idat_bytes: usize,
}

impl Png {
    /// Walks the chunks: the signature, IHDR first, every chunk's CRC, at least one IDAT, and
    /// IEND last with nothing after it.
    fn parse(bytes: &[u8]) -> Result<Png, String> {
        let mut rest = bytes
            .strip_prefix(b"\x89PNG\r\n\x1a\n".as_slice())
            .ok_or("not a PNG: bad signature")?;
        let mut header = None;
        let mut idat_bytes = 0;
        let mut first = true;
        loop {
            if rest.len() < 12 {
                return Err("the file ends before its IEND chunk".into());
            }
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if rest.len() < 12 + len {
                return Err("a chunk runs past the end of the file".into());
            }
            let kind = &rest[4..8];
            let data = &rest[8..8 + len];
            let crc =
                u32::from_be_bytes([rest[8 + len], rest[9 + len], rest[10 + len], rest[11 + len]]);
            if crc32(&rest[4..8 + len]) != crc {
                return Err(format!(
                    "bad checksum on chunk {}",
                    String::from_utf8_lossy(kind)
                ));
            }
            if first != (kind == b"IHDR") {
                return Err("IHDR is not the first chunk".into());
            }
            first = false;
            match kind {
                b"IHDR" => {
                    if len != 13 {
                        return Err(format!("IHDR has {len} bytes, not 13"));
                    }
                    let width = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                    let height = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
                    let (depth, color) = (data[8], data[9]);
                    // 8-bit truecolour, with or without alpha: what Chromium writes.
                    if depth != 8 || !(color == 2 || color == 6) {
                        return Err(format!("unexpected depth {depth} / colour type {color}"));
                    }
                    if width == 0 || height == 0 {
                        return Err("an empty image".into());
                    }
                    header = Some((width, height));
                }
                b"IDAT" => idat_bytes += len,
                b"IEND" => {
                    if rest.len() != 12 {
                        return Err("data after IEND".into());
                    }
                    break;
                }
                _ => {}
            }
            rest = &rest[12 + len..];
        }
        let (width, height) = header.ok_or("no IHDR chunk")?;
        if idat_bytes == 0 {
            return Err("no pixel data (IDAT)".into());
        }
        Ok(Png {
            width,
            height,
            idat_bytes,
        })
    }
}

/// CRC-32 (IEEE, reflected, as PNG uses it), bit by bit: slow but a few lines, and the files
/// are small.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
