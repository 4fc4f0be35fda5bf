#!/usr/bin/env python3
"""Generates the files in samples/ (deterministic: fixed seed). Run from the repository root:

    python3 scripts/gen_samples.py

Every IFSC below is a real branch in the bundled directory that reports NEFT, IMPS and RTGS
(a test checks that the salary and vendor files validate clean).
"""
import csv
import random

IFSCS = [
    "SBIN0000001", "SBIN0000004", "SBIN0000018", "SBIN0000024", "HDFC0000003", "HDFC0000004", "HDFC0000006",
    "HDFC0000007", "ICIC0000001", "ICIC0000005", "ICIC0000006", "ICIC0000007", "UTIB0000001", "UTIB0000003",
    "UTIB0000005", "UTIB0000006", "PUNB0000010", "PUNB0000020", "PUNB0000310", "PUNB0000710", "BARB0AAMBUR",
    "BARB0ADARSH", "BARB0ADAYAR", "BARB0AERODR", "UBIN0530123", "UBIN0530131", "UBIN0530140", "UBIN0530166",
    "CNRB0000024", "CNRB0000051", "CNRB0000056", "CNRB0000057", "KKBK0000141", "KKBK0000158", "KKBK0000159",
    "KKBK0000160", "IDIB000A002", "IDIB000A004", "IDIB000A005", "IDIB000A013", "YESB0000001", "YESB0000002",
    "YESB0000003", "YESB0000005", "INDB0000001", "INDB0000002", "INDB0000003", "INDB0000005", "FDRL0000001",
    "FDRL0000008", "FDRL0000016", "FDRL0000018", "IOBA0000002", "IOBA0000005", "IOBA0000007", "IOBA0000008",
    "BKID0000001", "BKID0000002", "BKID0000003", "BKID0000004", "MAHB0000001", "MAHB0000002", "MAHB0000003",
    "MAHB0000005", "CBIN0280090", "CBIN0280093", "CBIN0280094", "CBIN0280095", "UCBA0000001", "UCBA0000002",
    "UCBA0000003", "UCBA0000004", "IDFB0010202", "IDFB0010209", "IDFB0010219", "IDFB0010224", "KARB0000001",
    "KARB0000021", "KARB0000026", "KARB0000039",
]

FIRST = ["Aarav", "Vivaan", "Aditya", "Vihaan", "Arjun", "Sai", "Reyansh", "Krishna", "Ishaan", "Rohan", "Ananya",
         "Diya", "Aadhya", "Saanvi", "Pari", "Anika", "Navya", "Meera", "Priya", "Kavya", "Lakshmi", "Rahul",
         "Sneha", "Pooja", "Deepak", "Suresh", "Ramesh", "Manoj", "Sunita", "Anjali", "Farhan", "Zoya", "Imran",
         "Harpreet", "Gurpreet", "Joseph", "Mary", "Thomas", "Venkatesh", "Karthik", "Divya", "Nandini",
         "Sourav", "Debashish", "Rituparna", "Abhishek", "Neha", "Vikram", "Shalini", "Tanvi"]
LAST = ["Sharma", "Verma", "Iyer", "Nair", "Reddy", "Patel", "Shah", "Mehta", "Gupta", "Agarwal", "Banerjee",
        "Chatterjee", "Das", "Mukherjee", "Khan", "Ahmed", "Singh", "Gill", "D'Souza", "Fernandes", "Pillai",
        "Menon", "Rao", "Naidu", "Kulkarni", "Deshpande", "Joshi", "Kapoor", "Malhotra", "Bose", "Sen", "Ghosh",
        "Pandey", "Mishra", "Tiwari", "Yadav", "Chauhan", "Rathore", "Subramanian", "Krishnan"]
DEPTS = ["Engineering", "Finance", "Sales", "Operations", "HR", "Support", "Marketing", "Legal"]


def indian(n):
    """12,34,567.00 style."""
    whole, frac = f"{n:.2f}".split(".")
    if len(whole) > 3:
        head, tail = whole[:-3], whole[-3:]
        groups = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        if head:
            groups.insert(0, head)
        whole = ",".join(groups + [tail])
    return f"{whole}.{frac}"


def account(rng):
    return str(rng.randint(10**10, 10**14 - 1)).rjust(rng.choice([11, 12, 14]), "0")


def salary(rng):
    rows = []
    used = set()
    for i in range(1, 201):
        while True:
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            if name not in used:
                used.add(name)
                break
        gross = rng.choice([18500, 22000, 27500, 32000, 38000, 45000, 52000, 61000, 75000, 88000, 1_05_000,
                            1_25_000, 1_60_000, 2_10_000, 3_40_000])
        net = round(gross * rng.uniform(0.78, 0.92), 2)
        mode = "IMPS" if net <= 1_00_000 and rng.random() < 0.55 else "NEFT"
        rows.append([f"EMP{1000 + i}", name, rng.choice(DEPTS), account(rng), rng.choice(IFSCS),
                     indian(net), mode, "Salary Nov 2026", f"{name.split()[0].lower()}.{i}@example.in"])
    with open("samples/salary-2026-11.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Employee ID", "Beneficiary Name", "Department", "Account No", "IFSC Code", "Net Pay",
                    "Payment Mode", "Narration", "Email"])
        w.writerows(rows)


def vendors(rng):
    vendors = ["Shree Ganesh Traders", "Om Sai Logistics Pvt Ltd", "Bharat Steel & Alloys", "Kaveri Foods",
               "Sahyadri Packaging", "Annapurna Caterers", "M/s. Patel Brothers", "Deccan Cloud Services LLP",
               "Ganga Textiles", "Sun Pharma Distributors", "Lotus Interiors", "Vishwakarma Engineering Works",
               "Nilgiri Tea Estates", "Coastal Freight Carriers", "Himalaya Office Supplies", "Rajdhani Printers",
               "Sri Lakshmi Electricals", "Konark Security Services", "Malabar Spices Exports", "Indus Tech Labs",
               "Chola Constructions", "Narmada Water Solutions", "Saraswati Stationers", "Pragati Motors",
               "Apex Housekeeping (India)", "Tirupati Cement Agency", "Vaigai Hardware", "Everest Courier Co",
               "Ashoka Event Management", "Gomti Solar Pvt Ltd", "Kalinga Minerals", "Doon Valley Furnishers",
               "Sabari Travels", "Marwar Handicrafts", "Ujjain Agro Products", "Thar Transport Co",
               "Brahmaputra Fisheries", "Periyar Rubber Co", "Satpura Timber Mart", "Aravalli Marbles"]
    with open("samples/vendors-2026-11.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Name", "accountNumber", "bankIfsc", "amount", "transferMode", "externalRef", "remarks",
                    "GSTIN"])
        for i, v in enumerate(vendors, 1):
            kind = rng.random()
            if kind < 0.3:
                amt, mode = rng.choice([2_15_000, 3_80_500.50, 6_45_000, 12_75_000, 48_00_000]), "RTGS"
            elif kind < 0.65:
                amt, mode = rng.choice([12_400, 38_250.75, 76_000, 1_45_999, 4_99_000]), "IMPS"
            else:
                amt, mode = rng.choice([8_500, 22_000, 64_300.40, 1_80_000, 9_50_000]), "NEFT"
            amount = f"₹{indian(amt)}" if rng.random() < 0.5 else f"{amt:.2f}"
            gstin = f"{rng.randint(10, 36)}ABCDE{rng.randint(1000, 9999)}F1Z{rng.randint(1, 9)}"
            w.writerow([v, account(rng), rng.choice(IFSCS), amount, mode, f"INV-2026-11-{i:04d}",
                        f"Invoice {i:04d} Nov 2026", gstin])


def mistakes():
    rows = [
        ["Beneficiary Name", "Account No", "IFSC Code", "Amount", "Mode", "Reference"],
        ["Ravi Kumar", "39628544321", "SBIN0000001", "25,000.00", "IMPS", "NOV-001"],
        ["Sunita Devi", "3.96285E+10", "HDFC0000003", "18,500", "NEFT", "NOV-002"],
        ["Arjun Mehta", "50100234567890", "HDFC000003", "32,000", "NEFT", "NOV-003"],
        ["Kavya Iyer", "123456789012", "ABCD0123456", "40,000", "IMPS", "NOV-004"],
        ["Farhan Khan", "987654321098", "ICIC0000001", "1,500.555", "IMPS", "NOV-005"],
        ["Meera Nair", "112233445566", "UTIB0000001", "6,50,000", "IMPS", "NOV-006"],
        ["Deepak Rao", "223344556677", "PUNB0000010", "1,20,000", "RTGS", "NOV-007"],
        ["रवि शर्मा", "334455667788", "CNRB0000024", "21,000", "NEFT", "NOV-008"],
        ["Anjali Das", "445566778899", "KKBK0000141", "", "NEFT", "NOV-009"],
        ["Joseph Thomas", "556677889900", "YESB0000001", "15,000", "CHEQUE", "NOV-010"],
        ["Ravi Kumar", "39628544321", "SBIN0000001", "25000", "IMPS", "NOV-011"],
        ["Priya Sharma", "667788990011", "INDB0000001", "27,500", "NEFT", "nov-001"],
        ["Vikram Singh", "7788", "FDRL0000001", "9,999", "IMPS", "NOV-013"],
        ["Neha Gupta", "889900112233", "IOBA0000002", "12,345.67", "NEFT", "NOV 014"],
    ]
    with open("samples/mistakes.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
        f.write("Tanvi Joshi,990011223344,BKID0000001,14,500,NEFT,NOV-015\n")


def magic():
    """One row per magic account of the sandbox (see `payrun sandbox --help`)."""
    accounts = [
        ("999900000001", "Bank Failure Demo"), ("999900000002", "Pending Then Paid"),
        ("999900000003", "Pending Forever"), ("999900000004", "Lost Answer Timeout"),
        ("999900000005", "Lost Answer Reset"), ("999900000006", "Server Error First"),
        ("999900000007", "Rejected TE0020"), ("999900000008", "Reference Collision"),
        ("999900000009", "Collision Answer Lost"), ("999900000010", "Rate Limited First"),
        ("999900000011", "Token Invalid First"), ("999900000012", "Pending Then Bank Failure"),
        ("999900000013", "Reset And Lagging Status"), ("999900000014", "Status Other Account"),
        ("999900000015", "Server Error After Apply"), ("999900000016", "TE0020 After Apply"),
        ("999900000017", "Status With Charges"), ("999900000018", "Paid By Earlier Run"),
        ("999900000018", "Paid Earlier Own Ref"), ("999900000019", "Reference Read As Order Id"),
    ]
    # Two rows use the file's own reference column. A collision is proven only for a file's own
    # reference (a derived one is the row's alone), and an earlier run's payment under a file's own
    # reference cannot be told from a reused reference (REF_ALREADY_USED); derived references can.
    own_ref = {"Reference Collision": "MAGIC-REUSED-0008", "Paid Earlier Own Ref": "MAGIC-OWN-0018"}
    with open("samples/sandbox-magic.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["Name", "Account Number", "IFSC", "Amount", "Mode", "Remarks", "Reference"])
        w.writerow(["Ordinary Payee", "501002003004", "HDFC0000003", "1000.00", "IMPS", "control row", ""])
        for i, (acc, name) in enumerate(accounts):
            w.writerow([name, acc, IFSCS[i % len(IFSCS)], f"{1000 + i}.00", "IMPS", "sandbox magic account",
                        own_ref.get(name, "")])


if __name__ == "__main__":
    rng = random.Random(20261124)
    salary(rng)
    vendors(rng)
    mistakes()
    magic()
