//! The page's preview of a Migration file, over plain HTTP (no browser): a row of the sheet is
//! a person, and the preview shows what each row makes, rows alike together, before anything
//! is sent (issue 21: the dry run shows the calls each row expands to, on the page as in the
//! terminal).

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::UiServer;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{redirect, Client, StatusCode};

const PEOPLE: &str = "Customer Ref,Company Name,Company Email,Plan,Contract Months,Address Line 1,Town,Postcode,First Name,Last Name,User Email,Number,Device,MAC Address
A1,Acme Plumbing Ltd,ops@acme.example,pro,12,Unit 1,Manchester,M1 1AE,Tom,Baker,tom@acme.example,0161 496 0701,Yealink T54W,80:5E:C0:12:34:70
A1,,,,,,,,Ann,Lee,ann@acme.example,0161 496 0702,Yealink T54W,
A1,,,,,,,,Bob,Ray,bob@acme.example,0161 496 0703,Yealink T54W,
";

fn http() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_preview_of_a_migration_file_shows_what_each_row_makes() {
    let dir = tempfile::tempdir().unwrap();
    let ui = UiServer::start(
        &dir.path().join("data"),
        &common::no_config(dir.path()),
        &[],
    );
    let r = http().get(&ui.url).send().await.unwrap();
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    let cookie = set.split(';').next().unwrap().to_string();

    // A form's upload, as a browser sends it.
    let boundary = "plbulk-test-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"people.csv\"\r\nContent-Type: text/csv\r\n\r\n{PEOPLE}\r\n--{boundary}--\r\n"
    );
    let r = http()
        .post(format!("{}/files", ui.origin))
        .header(COOKIE, &cookie)
        .header("Origin", &ui.origin)
        .header(
            CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let file = r.headers()[LOCATION].to_str().unwrap().to_string();

    let r = http()
        .get(format!("{}{file}/preview", ui.origin))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("What each row makes"), "{page}");
    // Tom's row makes the customer, his user, number and phone; Ann's and Bob's rows their
    // user and number, and a line each of the customer's one order, which Ann's row places.
    for row in [
        "<td>row 2</td><td class=\"num\">5</td><td>Customer: Add Customer; User: Add Customer User; Number: Add Customer Number + Allocate Customer Number; Device: Add Customer User Device</td>",
        "<td>row 3</td><td class=\"num\">4</td><td>User: Add Customer User; Number: Add Customer Number + Allocate Customer Number; Order: Add Customer Order</td>",
        "<td>row 4</td><td class=\"num\">3</td><td>User: Add Customer User; Number: Add Customer Number + Allocate Customer Number; Order: a line of its customer's one order</td>",
    ] {
        assert!(page.contains(row), "{row}\n{page}");
    }
}
