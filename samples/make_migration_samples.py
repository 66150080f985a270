#!/usr/bin/env python3
"""Makes samples/migration/ (run from the repository root; needs only Python 3).

Exports of a previous provider, in its own shape, and the mapping files that read them:

billing-customers.csv: a billing system's customer list. "Account Name", "Primary Contact",
  "Billing Email", "Main Number" in +44 form, "Package" with plan names like "PL Standard",
  "Term (months)" as "12", "24 months" or "Rolling", a postcode, and columns plbulk has no use
  for ("Account Manager", "Balance").
users-export.csv: the provider's users export, one row per person: "Account Name" for the
  customer, one "Name" column ("Lee, Jordan" and "Jordan Lee" forms), "Email Address",
  "Extension" (nothing to do with PL+), "DDI" in several spellings, "Role".
handsets-export.csv: the provider's handset list, for `map init` to guess a third shape
  (Devices): "Site", "Assigned To", "Phone Model", "MAC Addr".
customers.map.toml, users.map.toml, numbers.map.toml: the mappings, as a partner keeps them
  after `plbulk map init` and a review. The users export is read twice: as Users (the people)
  and as Numbers (each DDI added to the account's pool and allocated to its person).

Numbers and postcodes are ones the built-in sandbox knows (Ofcom drama ranges, its address
lookup), so the exports also run end to end against it.
"""
import csv
import os

OUT = os.path.join("samples", "migration")

# (account, contact, town, postcode, area, package, term, street)
ACCOUNTS = [
    ("Harbour Dental Ltd", "Priya Shah", "Manchester", "M1 1AE", "0161", "PL Standard", "12", "14 Quay Street"),
    ("Kestrel Joinery Ltd", "Owen Evans", "Leeds", "LS1 4AP", "0113", "PL Standard", "24 months", "2 Mill Lane"),
    ("Larch & Co Accountants", "Mei Chen", "London", "EC1A 1BB", "020", "pl standard ", "36", "9 Long Lane"),
    ("Granite Printers Ltd", "Rhys Jones", "Birmingham", "B33 8TH", "0121", "PL Handset Only", "Rolling", "Unit 3, Yardley Park"),
    ("Summit Physio Ltd", "Zara Ali", "Bristol", "BS1 4DJ", "0117", "PL Standard", "12", "40 Corn Street"),
]

# (account index, name as the export spells it, email local part, extension, role)
PEOPLE = [
    (0, "Shah, Priya", "priya", "201", "Administrator"),
    (0, "Tom Baker", "tom", "202", "User"),
    (0, "Lee, Jordan", "jordan", "203", "User"),
    (1, "Owen Evans", "owen", "100", "Administrator"),
    (1, "Fatima Hussain", "fatima", "101", "Standard User"),
    (2, "Chen, Mei", "mei", "10", "Administrator"),
    (2, "Niamh Byrne", "niamh", "11", "user"),
    (2, "Dev Patel", "dev", "12", "User"),
    (4, "Zara Ali", "zara", "300", "Administrator"),
    (4, "Callum Reid", "callum", "301", "User"),
]

LOCAL = {"0161": "4960", "0113": "4960", "0121": "4960", "0117": "4960", "020": "7946"}


def digits(area, n):
    """A number of the sandbox's drama range for the area, as dialled: 01614960123."""
    return f"{area}{LOCAL[area]}{n:03d}" if len(area) == 4 else f"{area}{LOCAL[area]}{n:04d}"


def spelt(d, i):
    """The same number as exports spell them: +44 161 496 0123, 01614960123, (0161) 4960123…"""
    area = d[:3] if d.startswith("020") else d[:4]
    rest = d[len(area):]
    forms = [
        f"+44 {d[1:4]} {d[4:7]} {d[7:]}",
        d,
        f"{area} {rest[:3]} {rest[3:]}",
        f"({area}) {rest}",
        f"44{d[1:]}",
        f"+44 (0){d[1:]}",
    ]
    return forms[i % len(forms)]


def slug(account):
    return account.lower().split(" ltd")[0].replace("&", "and").replace(" ", "-")


def write(name, header, rows):
    with open(os.path.join(OUT, name), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(rows)


def billing():
    rows = []
    for i, (acct, contact, town, postcode, area, package, term, street) in enumerate(ACCOUNTS):
        hardware = "handset" in package.lower()
        rows.append([
            f"ACC-{1001 + i}",
            acct,
            contact,
            "" if hardware else f"{contact.split()[0].lower()}@{slug(acct)}.example",
            "+44 " + digits(area, 900 + i)[1:],
            package,
            term,
            street,
            town,
            postcode.lower() if i % 2 else postcode,
            ["J. Smith", "A. Patel"][i % 2],
            f"{(i * 37.5):.2f}",
        ])
    write("billing-customers.csv",
          ["Account No", "Account Name", "Primary Contact", "Billing Email", "Main Number", "Package",
           "Term (months)", "Street", "Town/City", "Postcode", "Account Manager", "Balance"],
          rows)


def users():
    rows = []
    for i, (a, name, local, ext, role) in enumerate(PEOPLE):
        acct, _, _, _, area, *_ = ACCOUNTS[a]
        rows.append([
            acct,
            name,
            f"{local}@{slug(acct)}.example",
            ext,
            spelt(digits(area, 100 + i), i),
            role,
        ])
    write("users-export.csv", ["Account Name", "Name", "Email Address", "Extension", "DDI", "Role"], rows)


def handsets():
    models = ["Yealink T54W", "Yealink T31P", "yealink t46u"]
    rows = []
    for i, (a, name, local, ext, role) in enumerate(PEOPLE):
        acct = ACCOUNTS[a][0]
        mac = f"80:5E:C0:{0x20 + i:02X}:{0x10 + i:02X}:{0x40 + i:02X}"
        rows.append([acct, f"{local}@{slug(acct)}.example", models[i % 3], mac if i % 2 else mac.replace(":", "-").lower(), ext])
    write("handsets-export.csv", ["Site", "Assigned To", "Phone Model", "MAC Addr", "Ext"], rows)


MAPPINGS = {
    "customers.map.toml": '''# The billing system's customer list (billing-customers.csv) as plbulk Customers rows.
# Written by plbulk map init, then reviewed.
kind = "customers"
ignore = ["Account Manager", "Balance"]   # not PL+ data

[columns]
"Ref" = "Account No"
"Company Name" = "Account Name"
"Contact Name" = "Primary Contact"
"Email" = "Billing Email"
"Phone" = "Main Number"
"Plan" = "Package"
"Contract Months" = "Term (months)"
"Address Line 1" = "Street"
"Town" = "Town/City"
# Postcode: the export's column has plbulk's own name, so it needs no line.

[values."Plan"]          # matched trimmed, in any case
"PL Standard" = "pro"
"PL Handset Only" = "hardware"

[values."Contract Months"]
"24 months" = "24"
"Rolling" = "1"
''',
    "users.map.toml": '''# The previous provider's users export (users-export.csv) as plbulk Users rows.
kind = "users"
ignore = ["Extension", "DDI"]   # extensions stay behind; DDIs are numbers.map.toml's

[columns]
"Customer" = "Account Name"
"First Name" = { from = "Name", part = "first" }   # "Lee, Jordan" is Jordan / Lee
"Last Name" = { from = "Name", part = "last" }
"Email" = "Email Address"
"Type" = "Role"

[values."Type"]
"Administrator" = "admin"
"User" = "standard"
"Standard User" = "standard"
''',
    "numbers.map.toml": '''# The same users export, read as Numbers: each DDI added to its account and allocated to
# its person (run after users.map.toml, so the people are there).
kind = "numbers"
ignore = ["Name", "Extension", "Role"]

[columns]
"Customer" = "Account Name"
"Number" = "DDI"
"User Email" = "Email Address"
"Action" = { value = "add" }
''',
}


def main():
    os.makedirs(OUT, exist_ok=True)
    billing()
    users()
    handsets()
    for name, text in MAPPINGS.items():
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
