//! Validation allocates nothing per cell: a large file of any kind costs a bounded number of
//! allocations, not one or more a row. This binary counts every allocation the process makes,
//! so it holds this one test only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use plbulk::intake;
use plbulk::schema::Kind;
use plbulk::validate::Validator;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only a count is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A header and `n` valid rows of `kind`, every key distinct.
fn sheet(kind: Kind, n: usize) -> String {
    let mut s = String::new();
    let header = match kind {
        Kind::Customers => "Action,Ref,Company Name,Contact Name,Email,Phone,Plan,Contract Months,Address Line 1,Town,Postcode",
        Kind::Users => "Action,Customer,First Name,Last Name,Email,Type",
        Kind::Numbers => "Action,Customer,Number,User Email",
        Kind::BlockedNumbers => "Action,Customer,Number,Direction,Note",
        Kind::Devices => "Customer,User Email,Product,MAC Address",
        Kind::Orders => "Order Ref,Customer,Product,Quantity,Delivery Address Line 1,Delivery Town,Delivery Postcode",
        Kind::UserSettings => "Customer,User Email,Reject Anonymous,Call Waiting,Voicemail,Open Days,Open Time,Close Time,Out Of Hours Redirect",
        Kind::PartnerUsers => "Action,First Name,Last Name,Email,Role",
        Kind::Migration => "Customer Ref,Company Name,Company Email,Plan,Contract Months,Address Line 1,Town,Postcode,First Name,Last Name,User Email,Number,Device,MAC Address",
    };
    s.push_str(header);
    s.push('\n');
    for i in 0..n {
        let _ = match kind {
            Kind::Customers => writeln!(
                s,
                "add,C{i},Company {i} Ltd,Pat {i},ops{i}@c{i}.example,0161 496 {:04},pro,12,{i} High St,Leeds,ls1 4ap",
                i % 10_000
            ),
            Kind::Users => writeln!(
                s,
                "add,Acme Ltd,First{i},Last{i},user{i}@acme.example,standard"
            ),
            Kind::Numbers => writeln!(s, "add,Acme Ltd,0161{i:07},user{i}@acme.example"),
            Kind::BlockedNumbers => writeln!(s, "add,Acme Ltd,0870{i:07},inbound,nuisance caller"),
            Kind::Devices => writeln!(
                s,
                "Acme Ltd,user{i}@acme.example,Yealink T54W,00-1a-2b-{:02x}-{:02x}-{:02x}",
                i >> 16,
                (i >> 8) & 0xff,
                i & 0xff
            ),
            Kind::Orders => writeln!(
                s,
                "O{},Acme Ltd,Yealink T54W,2,1 Mill Lane,York,YO1 7HH",
                i / 4
            ),
            Kind::UserSettings => writeln!(
                s,
                "Acme Ltd,user{i}@acme.example,yes,no,Yes,Mon-Fri,9am,17:30,07700 900{:03}",
                i % 1000
            ),
            Kind::PartnerUsers => writeln!(s, "add,First{i},Last{i},p{i}@partner.example,Admin"),
            // Twenty people a customer; its first row gives it, the others leave it blank.
            Kind::Migration if i % 20 == 0 => writeln!(
                s,
                "C{c},Company {c} Ltd,ops@c{c}.example,pro,12,1 Mill Lane,York,YO1 7HH,First{i},Last{i},user{i}@acme.example,0161{i:07},Yealink T54W,00-1a-2b-{:02x}-{:02x}-{:02x}",
                i >> 16,
                (i >> 8) & 0xff,
                i & 0xff,
                c = i / 20
            ),
            Kind::Migration => writeln!(
                s,
                "C{c},,,,,,,,First{i},Last{i},user{i}@acme.example,0161{i:07},Yealink T54W,",
                c = i / 20
            ),
        };
    }
    s
}

/// Allocations made validating `rows` rows of `kind` from a CSV file.
fn allocations(dir: &std::path::Path, kind: Kind, rows: usize) -> u64 {
    let path = dir.join(format!("{}-{rows}.csv", kind.cli_name()));
    std::fs::write(&path, sheet(kind, rows)).unwrap();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut v = Validator::new();
    for mut sheet in intake::open(&path, Some(kind)).unwrap() {
        let counts = v.check_sheet(&mut sheet).unwrap();
        assert_eq!(counts.valid, rows as u64, "{kind}");
    }
    let out = v.finish();
    assert_eq!(
        out.findings.errors(),
        0,
        "{kind}: {:?}",
        out.findings.items()
    );
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn validating_allocates_a_bounded_amount_not_a_few_times_a_row() {
    let dir = tempfile::tempdir().unwrap();
    for kind in Kind::ALL {
        // The reader's buffers and the first growth of each table cost the same for both
        // sizes; what the extra rows add is what each row costs.
        let (small, large) = (20_000, 100_000);
        let per_row = (allocations(dir.path(), kind, large) as f64
            - allocations(dir.path(), kind, small) as f64)
            / (large - small) as f64;
        // What does allocate as rows grow: the logs of keys as they double, and the few rows
        // the repeat filter takes for possible repeats (about 2% a key), kept with their text.
        // A rule that allocated for each cell it read would show as 1 or more.
        assert!(
            per_row < 0.25,
            "{kind}: {per_row:.3} allocations a row, where a cell rule should make none"
        );
        eprintln!("{kind}: {per_row:.4} allocations a row");
    }
}
