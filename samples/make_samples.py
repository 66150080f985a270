#!/usr/bin/env python3
"""Makes the files in samples/ (run from the repository root; needs openpyxl).

customers-migration.csv: 300 customers as a legacy system exports them (Windows line ends,
  mixed number formats, "Standard"/"Hardware only" plan names).
onboarding.xlsx: templates/onboarding.xlsx filled in for three companies, as a partner would
  in Excel: every sheet, example rows overwritten.
broken.xlsx: the same template with rows that show every kind of finding plbulk reports.

Numbers, products and postcodes are ones the built-in sandbox knows (Ofcom drama ranges, its
catalogue, its address lookup), so the samples also run end to end against it.
"""
import csv
import random
import openpyxl

random.seed(20261128)

TOWNS = [("Manchester", "M1 1AE", "0161"), ("Leeds", "LS1 4AP", "0113"), ("Birmingham", "B33 8TH", "0121"),
         ("Bristol", "BS1 4DJ", "0117"), ("London", "EC1A 1BB", "020"), ("Cardiff", "CF10 1EP", "029")]
TRADES = ["Plumbing", "Electrics", "Joinery", "Dental", "Accountants", "Bakery", "Florists", "Opticians",
          "Solicitors", "Vets", "Garage", "Printers", "Lettings", "Physio", "Architects"]
NAMES = ["Acme", "Bolt", "Crown", "Delta", "Elm", "Fern", "Granite", "Harbour", "Iris", "Juniper", "Kestrel",
         "Larch", "Meadow", "Nimbus", "Oak", "Pine", "Quarry", "Raven", "Summit", "Thistle"]
FIRST = ["Priya", "Tom", "Aisha", "Owen", "Mei", "Callum", "Zara", "Dev", "Niamh", "Rhys", "Fatima", "Josh"]
LAST = ["Shah", "Baker", "Khan", "Evans", "Chen", "Reid", "Ali", "Patel", "Byrne", "Jones", "Hussain", "Wood"]


def phone_forms(area, n):
    local = {"0161": "4960", "0113": "4960", "0121": "4960", "0117": "4960", "020": "7946", "029": "2018"}[area]
    # Four-digit area codes take 3 more digits (0161 496 0xxx); 020 and 029 take 4 (020 7946 0xxx).
    digits = f"{area}{local}{n:03d}" if len(area) == 4 else f"{area}{local}{n:04d}"
    forms = [f"{area} {digits[len(area):len(area)+3]} {digits[len(area)+3:]}", digits,
             "+44 " + digits[1:], f"({area}) {digits[len(area):]}"]
    return random.choice(forms)


def migration_csv(path):
    rows = []
    used = set()
    for i in range(300):
        while True:
            name = f"{random.choice(NAMES)} {random.choice(TRADES)}"
            town, postcode, area = random.choice(TOWNS)
            company = f"{name} ({town}) Ltd" if name in used else f"{name} Ltd"
            if company not in used:
                used.add(company)
                break
        contact = f"{random.choice(FIRST)} {random.choice(LAST)}"
        hardware = i % 7 == 3
        slug = company.lower().replace(" ", "-").replace("(", "").replace(")", "").replace("-ltd", "")
        rows.append({
            "Customer Ref": f"C{i + 1:04d}",
            "Company": company,
            "Contact": contact,
            "E-mail": "" if hardware and i % 2 else f"{contact.split()[0].lower()}@{slug}.example",
            "Telephone": phone_forms(area, i % 1000),
            "Plan": "Hardware only" if hardware else random.choice(["Standard", "pro"]),
            "Contract Length": random.choice(["12", "24", "36", "1"]),
            "Address 1": f"{random.randint(1, 200)} High Street",
            "Address 2": random.choice(["", "Unit 4", "First Floor"]),
            "Town": town,
            "County": "",
            "Post Code": postcode.lower().replace(" ", "") if i % 5 == 0 else postcode,
        })
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()), lineterminator="\r\n")
        w.writeheader()
        w.writerows(rows)


def fill(book, sheet, rows):
    ws = book[sheet]
    headers = [c.value for c in ws[1]]
    for r, row in enumerate(rows, start=2):
        for c, h in enumerate(headers, start=1):
            cell = ws.cell(row=r, column=c)
            # ws.cell(value=None) leaves the template's example text in place: assign outright.
            cell.value = row.get(h, None)
            cell.font = openpyxl.styles.Font()


def onboarding(path, template):
    book = openpyxl.load_workbook(template)
    companies = [("ACME", "Acme Plumbing Ltd", "pro", "0161", "M1 1AE", "Manchester"),
                 ("BOLT", "Bolt Electrics Ltd", "hardware", "0113", "LS1 4AP", "Leeds"),
                 ("CROWN", "Crown Dental Practice", "pro", "0121", "B33 8TH", "Birmingham")]
    customers, users, numbers, blocked, devices, orders, settings = [], [], [], [], [], [], []
    mac = 0x805EC0100000
    n = 0
    for ref, company, plan, area, postcode, town in companies:
        domain = company.split()[0].lower() + ".example"
        customers.append({"Action": "add", "Ref": ref, "Company Name": company, "Contact Name": "Office Manager",
                          "Email": f"office@{domain}", "Phone": f"{area} 496 0{900 + n:03d}" if area != "020" else "",
                          "Plan": plan, "Contract Months": 24, "Address Line 1": "1 Station Road", "Town": town,
                          "Postcode": postcode})
        for k in range(4):
            first, last = FIRST[(n + k) % len(FIRST)], LAST[(n * 3 + k) % len(LAST)]
            email = f"{first.lower()}.{last.lower()}@{domain}"
            users.append({"Action": "add", "Customer": ref, "First Name": first, "Last Name": last, "Email": email,
                          "Type": "admin" if k == 0 else "standard"})
            number = f"{area} 496 0{n * 10 + k:03d}"
            numbers.append({"Action": "add", "Customer": ref, "Number": number, "User Email": email})
            devices.append({"Customer": ref, "User Email": email, "Product": "Yealink T54W" if k == 0 else "Yealink T33G",
                            "MAC Address": ":".join(f"{mac >> s & 0xFF:02X}" for s in range(40, -8, -8))})
            mac += 1
            settings.append({"Customer": ref, "User Email": email, "Reject Anonymous": "yes", "Call Waiting": "no",
                             "Voicemail": "yes", "Open Days": "Mon-Fri", "Open Time": "09:00", "Close Time": "17:30",
                             "Out Of Hours Redirect": f"{area} 496 0{n * 10 + 9:03d}"})
        numbers.append({"Action": "add", "Customer": ref, "Number": f"{area} 496 0{n * 10 + 5:03d}"})
        blocked.append({"Action": "add", "Customer": ref, "Number": "0870", "Direction": "both", "Note": "Premium rate"})
        blocked.append({"Action": "add", "Customer": ref, "Number": "+44 9", "Direction": "outbound", "Note": "Premium rate"})
        orders.append({"Order Ref": f"{ref}-1", "Customer": ref, "Product": "Yealink T54W", "Quantity": 1})
        orders.append({"Order Ref": f"{ref}-1", "Customer": ref, "Product": "Yealink T33G", "Quantity": 3})
        n += 1
    partners = [{"Action": "add", "First Name": "Sam", "Last Name": "Patel", "Email": "sam.patel@partner.example", "Role": "admin"},
                {"Action": "add", "First Name": "Jo", "Last Name": "Lee", "Email": "jo.lee@partner.example", "Role": "support"}]
    for sheet, rows in [("Customers", customers), ("Users", users), ("Numbers", numbers), ("Blocked Numbers", blocked),
                        ("Devices", devices), ("Orders", orders), ("User Settings", settings), ("Partner Users", partners)]:
        fill(book, sheet, rows)
    book.save(path)


def broken(path, template):
    book = openpyxl.load_workbook(template)
    fill(book, "Customers", [
        {"Action": "add", "Ref": "A", "Company Name": "Acme Ltd", "Plan": "pro", "Contract Months": 12},  # pro, no email
        {"Action": "add", "Ref": "A", "Company Name": "Bolt Ltd", "Email": "ops@bolt.example", "Plan": "hardware",
         "Contract Months": 18},  # duplicate Ref, bad months, hardware without address
        {"Action": "add", "Ref": "C", "Company Name": "Crown Ltd", "Email": "crown@", "Phone": "01632 96000",
         "Plan": "gold", "Contract Months": 12, "Address Line 1": "1 Road", "Postcode": "SW1A"},
        {"Action": "upsert", "Company Name": "Delta Ltd"},
        {"Action": "add", "Ref": "D", "Company Name": "Dup Co", "Email": "a@dup.example", "Plan": "pro", "Contract Months": 1},
        {"Action": "add", "Ref": "E", "Company Name": "Dup Co", "Email": "b@dup.example", "Plan": "pro", "Contract Months": 1},
    ])
    fill(book, "Users", [
        {"Customer": "A", "First Name": "Tom", "Last Name": "Baker", "Email": "tom@acme.example"},
        {"Customer": "A", "First Name": "Tom", "Last Name": "Baker", "Email": "TOM@acme.example"},
        {"Customer": "Nowhere Ltd", "First Name": "Ann", "Email": "ann@nowhere.example", "Type": "boss"},
        {"Customer": "Dup Co", "First Name": "Bea", "Last Name": "Ng", "Email": "bea@dup.example"},
    ])
    fill(book, "Numbers", [
        {"Action": "allocate", "Customer": "A", "Number": "0161 496 0001"},
        {"Action": "add", "Customer": "A", "Number": "0161 496 0002", "User Email": "tom@acme.example"},
        {"Action": "allocate", "Customer": "A", "Number": "01614960002", "User Email": "tom@acme.example"},
        {"Action": "add", "Customer": "A", "Number": "+1 415 555 0100"},
    ])
    fill(book, "Blocked Numbers", [
        {"Customer": "A", "Number": "870", "Direction": "sideways"},
        {"Customer": "A", "Number": "0870", "Note": "x" * 250},
    ])
    fill(book, "Devices", [
        {"Customer": "A", "User Email": "tom@acme.example", "Product": "Yealink T54W", "MAC Address": "80:5E:C0:12:34"},
        {"Customer": "A", "User Email": "tom@acme.example", "Product": "Yealink T54W", "MAC Address": "01:00:5E:00:00:FB"},
        {"Customer": "A", "User Email": "tom@acme.example", "Product": "", "MAC Address": "805E.C012.3456"},
        {"Customer": "A", "User Email": "tom@acme.example", "Product": "Yealink T33G", "MAC Address": "805ec0123456"},
    ])
    fill(book, "Orders", [
        {"Order Ref": "O1", "Customer": "A", "Product": "Yealink T54W", "Quantity": 0},
        {"Order Ref": "O1", "Customer": "C", "Product": "Yealink T54W", "Quantity": 2},
        {"Order Ref": "O2", "Customer": "A", "Product": "Yealink T54W", "Quantity": 1, "Delivery Address Line 1": "2 Road"},
    ])
    fill(book, "User Settings", [
        {"Customer": "A", "User Email": "tom@acme.example", "Voicemail": "maybe", "Open Days": "Mon-Funday",
         "Open Time": "17:30", "Close Time": "09:00"},
        {"Customer": "A", "User Email": "tom@acme.example"},
    ])
    fill(book, "Partner Users", [
        {"Action": "add", "Email": "sam@partner.example"},
        {"Action": "add", "First Name": "Sam", "Last Name": "P", "Email": "sam@partner.example", "Role": "admin"},
    ])
    book.save(path)


if __name__ == "__main__":
    migration_csv("samples/customers-migration.csv")
    onboarding("samples/onboarding.xlsx", "templates/onboarding.xlsx")
    broken("samples/broken.xlsx", "templates/onboarding.xlsx")
