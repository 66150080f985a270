//! The sandbox's reference data: area codes with free numbers, a catalogue of desk phones and
//! adapters, and addresses for a handful of postcodes.
//!
//! The numbers are Ofcom's ranges reserved for drama (0161 496 0000 to 0999 and the like), so
//! nothing a partner rehearses on the sandbox can ring a real line.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::contract::{Address, AreaCode, LookedUpAddress, Permission, Product};

/// (area code, place, first number of the drama range as dialled, how many).
const RANGES: &[(&str, &str, &str, u32)] = &[
    ("0113", "Leeds", "01134960000", 1000),
    ("0114", "Sheffield", "01144960000", 1000),
    ("0115", "Nottingham", "01154960000", 1000),
    ("0116", "Leicester", "01164960000", 1000),
    ("0117", "Bristol", "01174960000", 1000),
    ("0118", "Reading", "01184960000", 1000),
    ("0121", "Birmingham", "01214960000", 1000),
    ("0131", "Edinburgh", "01314960000", 1000),
    ("0141", "Glasgow", "01414960000", 1000),
    ("0151", "Liverpool", "01514960000", 1000),
    ("0161", "Manchester", "01614960000", 1000),
    ("0191", "Tyneside", "01914980000", 1000),
    ("01632", "Drama (no area)", "01632960000", 1000),
    ("020", "London", "02079460000", 1000),
    ("028", "Northern Ireland", "02896496000", 1000),
    ("029", "Cardiff", "02920180000", 1000),
];

const PRODUCTS: &[(&str, &str, &str, &str)] = &[
    (
        "prd-yealink-t31p",
        "Yealink",
        "T31P",
        "Entry-level IP desk phone, 2 lines, PoE",
    ),
    (
        "prd-yealink-t33g",
        "Yealink",
        "T33G",
        "IP desk phone, colour screen, gigabit",
    ),
    (
        "prd-yealink-t46u",
        "Yealink",
        "T46U",
        "Business IP phone, 4.3\" colour screen, USB",
    ),
    (
        "prd-yealink-t54w",
        "Yealink",
        "T54W",
        "Prime business phone, Wi-Fi and Bluetooth",
    ),
    (
        "prd-yealink-w73p",
        "Yealink",
        "W73P",
        "DECT cordless phone and base station",
    ),
    (
        "prd-yealink-cp925",
        "Yealink",
        "CP925",
        "Conference phone for medium rooms",
    ),
    (
        "prd-yealink-ehs36",
        "Yealink",
        "EHS36",
        "Wireless headset adapter",
    ),
    (
        "prd-polycom-vvx150",
        "Polycom",
        "VVX150",
        "Basic IP phone, 2 lines",
    ),
    (
        "prd-polycom-vvx250",
        "Polycom",
        "VVX250",
        "IP phone, colour screen, 4 lines",
    ),
    (
        "prd-polycom-vvx450",
        "Polycom",
        "VVX450",
        "IP phone for busy desks, 12 lines",
    ),
    (
        "prd-snom-d735",
        "Snom",
        "D735",
        "Executive IP phone, colour screen",
    ),
    (
        "prd-grandstream-ht801",
        "Grandstream",
        "HT801",
        "Analogue telephone adapter, 1 port",
    ),
    (
        "prd-cisco-spa112",
        "Cisco",
        "SPA112",
        "Analogue telephone adapter, 2 ports",
    ),
];

/// (postcode, town, county, the street part of each address at it).
const ADDRESSES: &[(&str, &str, &str, &[&str])] = &[
    (
        "SW1A 1AA",
        "London",
        "Greater London",
        &["Buckingham Palace"],
    ),
    (
        "SW1A 2AA",
        "London",
        "Greater London",
        &["10 Downing Street", "11 Downing Street"],
    ),
    (
        "EC1A 1BB",
        "London",
        "Greater London",
        &["1 St Martin's Le Grand", "2 St Martin's Le Grand"],
    ),
    (
        "W1A 1AA",
        "London",
        "Greater London",
        &["Broadcasting House, Portland Place"],
    ),
    (
        "M1 1AE",
        "Manchester",
        "Greater Manchester",
        &[
            "Unit 1, 12 Piccadilly",
            "Unit 2, 12 Piccadilly",
            "Unit 3, 12 Piccadilly",
        ],
    ),
    (
        "B33 8TH",
        "Birmingham",
        "West Midlands",
        &["1 Yardley Road", "3 Yardley Road"],
    ),
    (
        "CR2 6XH",
        "South Croydon",
        "Surrey",
        &["Flat 1, 14 Selsdon Road", "Flat 2, 14 Selsdon Road"],
    ),
    (
        "DN55 1PT",
        "Doncaster",
        "South Yorkshire",
        &["Suite 4, 1 Trafford Way"],
    ),
    (
        "LS1 4AP",
        "Leeds",
        "West Yorkshire",
        &["5 Park Row", "7 Park Row"],
    ),
    (
        "BS1 4DJ",
        "Bristol",
        "Bristol",
        &["20 Broad Quay", "22 Broad Quay"],
    ),
    ("EH1 1YZ", "Edinburgh", "Midlothian", &["3 Waverley Bridge"]),
    (
        "CF10 1EP",
        "Cardiff",
        "South Glamorgan",
        &["1 Central Square", "2 Central Square"],
    ),
];

const PERMISSIONS: &[(&str, &str, bool)] = &[
    ("customers.create", "Add customers", true),
    ("customers.delete", "Delete customers", false),
    ("numbers.manage", "Add, allocate and release numbers", true),
    ("orders.create", "Place hardware orders", true),
    ("billing.view", "See invoices and usage", false),
];

pub struct ReferenceData {
    pub pool: BTreeMap<String, String>,
    pub area_codes: Vec<AreaCode>,
    pub products: Vec<Product>,
    pub addresses: Vec<LookedUpAddress>,
    pub permissions: Vec<Permission>,
    pub partner_settings: Map<String, Value>,
}

fn to_e164(dialled: &str) -> String {
    format!("+44{}", &dialled[1..])
}

/// The area code a number in the seeded ranges files under; `""` for others.
pub fn area_code_of(e164: &str) -> String {
    RANGES
        .iter()
        .filter(|(code, ..)| e164.starts_with(&to_e164(code)))
        .max_by_key(|(code, ..)| code.len())
        .map_or_else(String::new, |(code, ..)| code.to_string())
}

pub fn reference_data() -> ReferenceData {
    let mut pool = BTreeMap::new();
    for (code, _, first, count) in RANGES {
        let first: u64 = first.parse().expect("ranges are digits");
        let width = 11;
        for i in 0..*count as u64 {
            let dialled = format!("{:0width$}", first + i);
            pool.insert(to_e164(&dialled), code.to_string());
        }
    }
    let area_codes = RANGES
        .iter()
        .map(|(code, name, ..)| AreaCode {
            code: code.to_string(),
            name: name.to_string(),
        })
        .collect();
    let products = PRODUCTS
        .iter()
        .map(|(id, brand, model, description)| Product {
            id: id.to_string(),
            brand: brand.to_string(),
            model: model.to_string(),
            description: description.to_string(),
        })
        .collect();
    let mut addresses = Vec::new();
    let mut uprn = 100_023_336_956u64;
    for (postcode, town, county, streets) in ADDRESSES {
        for street in *streets {
            let (line1, line2) = match street.split_once(", ") {
                Some((a, b)) => (a.to_string(), Some(b.to_string())),
                None => (street.to_string(), None),
            };
            addresses.push(LookedUpAddress {
                address: Address {
                    line1,
                    line2,
                    town: town.to_string(),
                    county: Some(county.to_string()),
                    postcode: postcode.to_string(),
                },
                uprn: uprn.to_string(),
            });
            uprn += 17;
        }
    }
    let permissions = PERMISSIONS
        .iter()
        .map(|(id, d, e)| Permission {
            id: id.to_string(),
            description: d.to_string(),
            enabled: *e,
        })
        .collect();
    let partner_settings = match json!({
        "companyName": "Sandbox Partner Ltd",
        "supportEmail": "support@sandbox-partner.example",
        "supportPhone": "+441632960999",
        "defaultContractMonths": 12,
        "brandColour": "#004B87",
    }) {
        Value::Object(m) => m,
        _ => unreachable!("a JSON object literal"),
    };
    ReferenceData {
        pool,
        area_codes,
        products,
        addresses,
        permissions,
        partner_settings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_is_the_drama_ranges() {
        let d = reference_data();
        assert_eq!(d.pool.len(), 16_000);
        assert_eq!(d.pool["+441614960000"], "0161");
        assert_eq!(d.pool["+441632960999"], "01632");
        assert_eq!(d.pool["+442079460999"], "020");
        assert_eq!(d.pool["+442896496000"], "028");
        assert_eq!(area_code_of("+441632960123"), "01632");
        assert_eq!(area_code_of("+447700900000"), "");
    }
}
