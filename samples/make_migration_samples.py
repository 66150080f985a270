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
people-export.csv: another provider's one flat export, one row per person, read whole as a
  Migration sheet: the account's columns repeated on each of its rows ("Account No",
  "Account Name", "Package" with "PL Standard" or "Handset Only", "Term", the site address),
  then the person's ("Name" in both forms, "Email Address", "Extension", "DDI" in several
  spellings, "Role", "Handset" with or without its "Handset MAC"). One account is hardware
  only: its rows name a handset and no person.
customers.map.toml, users.map.toml, numbers.map.toml: the mappings, as a partner keeps them
  after `plbulk map init` and a review. The users export is read twice: as Users (the people)
  and as Numbers (each DDI added to the account's pool and allocated to its person).
people.map.toml: the people export's mapping, `map init`'s guess corrected by hand.

Numbers and postcodes are ones the built-in sandbox knows (Ofcom drama ranges, its address
lookup), so the exports also run end to end against it. The people export's DDIs are the
07xx block of each range, which no other sample uses, so it runs on an account beside them.
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


# The people export's accounts: (Account No, Account Name, Primary Contact, Billing Email,
# Main Number, Package, Term, Site Address, Town/City, Post Code, Account Manager).
# Streets are ones the sandbox's address lookup has at the postcode.
PEOPLE_ACCOUNTS = [
    ("PL-3001", "Northgate Veterinary Ltd", "Aisha Khan", "aisha@northgate-vets.example", "0161 496 0780",
     "PL Standard", "12", "Unit 2, 12 Piccadilly", "Manchester", "M1 1AE", "J. Smith"),
    ("PL-3002", "Pennine Lettings Ltd", "Owen Evans", "owen@pennine-lettings.example", "+44 113 496 0780",
     "PL Standard", "24 months", "5 Park Row", "Leeds", "LS1 4AP", "A. Patel"),
    ("PL-3003", "Waverley Opticians", "Mei Chen", "mei@waverley-opticians.example", "0131 496 0780",
     "pl standard ", "36", "3 Waverley Bridge", "Edinburgh", "EH1 1YZ", "J. Smith"),
    # Hardware only: handsets for a print room, no people, no billing email.
    ("PL-3004", "Quayside Print Co", "Rhys Jones", "", "0117 496 0780",
     "Handset Only", "Rolling", "20 Broad Quay", "Bristol", "BS1 4DJ", "A. Patel"),
    ("PL-3005", "Taff Dental Ltd", "Si\u00e2n Morgan", "sian@taff-dental.example", "029 2018 0780",
     "PL Standard", "12", "1 Central Square", "Cardiff", "CF10 1EP", "J. Smith"),
]

# (account index, Name, email local part, Extension, DDI as the export spells it, Role,
# Handset, Handset MAC). A blank MAC is a phone still to be ordered; a blank Name a row of
# the hardware-only account.
PEOPLE_ROWS = [
    (0, "Khan, Aisha", "aisha", "201", "+44 161 496 0701", "Administrator", "Yealink T54W", "80:5E:C0:3A:01:01"),
    (0, "Tom Baker", "tom", "202", "01614960702", "User", "Yealink T31P", ""),
    (0, "Lee, Jordan", "jordan", "203", "(0161) 496 0703", "User", "Yealink T31P", ""),
    (0, "Grace O'Neill", "grace", "204", "0161 496 0704", "Standard User", "Yealink T54W", "805ec03a0104"),
    (1, "Evans, Owen", "owen", "100", "+44 (0)113 496 0701", "Administrator", "Yealink T46U", "80-5E-C0-3A-02-01"),
    (1, "Fatima Hussain", "fatima", "101", "441134960702", "User", "Yealink T46U", "80:5E:C0:3A:02:02"),
    (1, "Mary Ann Price", "mary", "102", "0113 4960703", "user", "Yealink T31P", "80:5E:C0:3A:02:03"),
    (2, "Chen, Mei", "mei", "10", "0131 496 0701", "Administrator", "Yealink T54W", ""),
    (2, "Callum Reid", "callum", "11", "+44 131 496 0702", "User", "Yealink T31P", ""),
    (2, "Dev Patel", "dev", "12", "01314960703", "User", "Yealink T54W", ""),
    (3, "", "", "", "", "", "Yealink T31P", ""),
    (3, "", "", "", "", "", "Yealink T31P", ""),
    (3, "", "", "", "", "", "Yealink W73P", ""),
    (4, "Morgan, Si\u00e2n", "sian", "401", "+44 29 2018 0701", "Administrator", "Yealink T54W", "80:5E:C0:3A:05:01"),
    # The receptionist answers the main number: no DDI, no handset of her own.
    (4, "Josh Wood", "josh", "402", "", "User", "", ""),
    (4, "Ffion Davies", "ffion", "403", "(029) 2018 0703", "User", "Yealink T31P", ""),
]


def people():
    rows = []
    seen = set()
    for a, name, local, ext, ddi, role, handset, mac in PEOPLE_ROWS:
        no, acct, contact, billing, main, package, term, street, town, postcode, manager = PEOPLE_ACCOUNTS[a]
        domain = billing.split("@")[1] if billing else ""
        # Typed by hand on the provider's side: one row of an account spells its postcode in
        # lower case, as real exports do.
        if a == 1 and a in seen:
            postcode = postcode.lower()
        seen.add(a)
        rows.append([no, acct, package, term, contact, billing, main, street, town, postcode,
                     name, f"{local}@{domain}" if local else "", ext, ddi, role, handset, mac, manager])
    write("people-export.csv",
          ["Account No", "Account Name", "Package", "Term", "Primary Contact", "Billing Email", "Main Number",
           "Site Address", "Town/City", "Post Code", "Name", "Email Address", "Extension", "DDI", "Role",
           "Handset", "Handset MAC", "Account Manager"],
          rows)


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
    "people.map.toml": '''# The previous provider's flat export (people-export.csv), one row per person, as plbulk
# Migration rows: each row's account (made once), person, DDI (added and allocated to them)
# and handset (assigned by its MAC, or ordered with the account's other handsets).
# Written by plbulk map init, then reviewed: its column guesses kept, identity values dropped,
# the handsets' products (left to fill in) given their catalogue ids.
kind = "migration"
ignore = ["Extension", "Account Manager"]   # extensions stay behind; not PL+ data

[columns]
"Customer Ref" = "Account No"
"Company Name" = "Account Name"
"Plan" = "Package"
"Contract Months" = "Term"
"Contact Name" = "Primary Contact"
"Company Email" = "Billing Email"
"Company Phone" = "Main Number"
"Address Line 1" = "Site Address"
"Town" = "Town/City"
"Postcode" = "Post Code"
"First Name" = { from = "Name", part = "first" }   # "Lee, Jordan" is Jordan / Lee
"Last Name" = { from = "Name", part = "last" }     # "Mary Ann Price" is Mary Ann / Price
"User Email" = "Email Address"
"User Type" = "Role"
"Number" = "DDI"
"Device" = "Handset"
"MAC Address" = "Handset MAC"

[values."Plan"]          # matched trimmed, in any case: "pl standard " is PL Standard
"PL Standard" = "pro"
"Handset Only" = "hardware"

[values."Contract Months"]
"24 months" = "24"
"Rolling" = "1"

[values."User Type"]
"Administrator" = "admin"
"User" = "standard"
"Standard User" = "standard"

[values."Device"]        # the catalogue's product ids (plbulk also takes "Yealink T54W" as it is)
"Yealink T54W" = "prd-yealink-t54w"
"Yealink T46U" = "prd-yealink-t46u"
"Yealink T31P" = "prd-yealink-t31p"
"Yealink W73P" = "prd-yealink-w73p"
''',
}


def main():
    os.makedirs(OUT, exist_ok=True)
    billing()
    users()
    handsets()
    people()
    for name, text in MAPPINGS.items():
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
