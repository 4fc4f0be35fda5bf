#!/usr/bin/env bash
# Makes docs/result-xlsx-printed.png, docs/operator-guide.md's picture of the result workbook on paper: the
# sample salary file paid through the embedded sandbox (no real money moves), written with
# --out result.xlsx, printed by LibreOffice Calc to PDF with the workbook's own page setup
# (landscape A4, one page wide, the heading repeated), then the first page of the sheets Results,
# Needs attention and Print as PNG, stacked from top to bottom.
#
# Needs: cargo (or PAYRUN=/path/to/payrun), LibreOffice Calc (soffice), pdftoppm, pdftotext and
# pdfinfo (poppler-utils), ImageMagick (convert and identify; CONVERT=/path/to/convert picks one).
# On Debian or Ubuntu:
#   apt-get install -y libreoffice-calc poppler-utils imagemagick
#
# Usage: scripts/print_xlsx.sh [OUT.png]     (default: docs/result-xlsx-printed.png)
#        KEEP_PDF=printed.pdf scripts/print_xlsx.sh   also keeps the whole printout
# The journal is a scratch one in a temporary folder, never the user's own.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/docs/result-xlsx-printed.png}
case "$out" in /*) ;; *) out=$PWD/$out ;; esac
keep_pdf=${KEEP_PDF:-}
case "$keep_pdf" in /* | "") ;; *) keep_pdf=$PWD/$keep_pdf ;; esac
dpi=${DPI:-60}
convert=${CONVERT:-convert}

missing=""
for tool in soffice pdftoppm pdftotext pdfinfo "$convert" identify; do
    command -v "$tool" >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    echo "print_xlsx: not found:$missing" >&2
    echo "print_xlsx: install them: apt-get install -y libreoffice-calc poppler-utils imagemagick" >&2
    exit 1
fi

payrun=${PAYRUN:-}
if [ -z "$payrun" ]; then
    command -v cargo >/dev/null || { echo "print_xlsx: cargo not found (or set PAYRUN=/path/to/payrun)" >&2; exit 1; }
    (cd "$root" && cargo build --release --quiet)
    payrun=$root/target/release/payrun
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root/samples/salary-2026-11.csv" "$work/"
cd "$work"

# A scratch journal: the data directory is inside the temporary folder, and --state names its
# payrun directory, which is then the default one (so the workbook shows the plain commands). No
# payrun.toml: the defaults (Asia/Kolkata). The realistic sandbox fails a few payouts at the bank,
# as banks do, so Needs attention has rows: exit 2 is what we want to print.
export XDG_DATA_HOME=$work/data
code=0
env -u PAYRUN_CONFIG -u PAYRUN_STATE "$payrun" run salary-2026-11.csv --state "$XDG_DATA_HOME/payrun" \
    --out result.xlsx --rate 100 --burst 10 >run.log 2>&1 || code=$?
if [ "$code" -ne 0 ] && [ "$code" -ne 2 ]; then
    cat run.log >&2
    echo "print_xlsx: payrun run exited $code" >&2
    exit 1
fi

# Printed as Calc prints it: the page setup written in the workbook decides the pages.
soffice --headless --norestore --convert-to pdf result.xlsx >soffice.log 2>&1
[ -s result.pdf ] || { cat soffice.log >&2; echo "print_xlsx: no PDF from soffice" >&2; exit 1; }
[ -z "$keep_pdf" ] || cp result.pdf "$keep_pdf"

# Each page's footer names its sheet on the left ("Needs attention ... Page 4 of 12").
pages=$(pdfinfo result.pdf | awk '/^Pages:/ {print $2}')
first_page() {
    local p
    for p in $(seq 1 "$pages"); do
        if pdftotext -layout -f "$p" -l "$p" result.pdf - | grep -Eq "^ *$1 +Page [0-9]+ of [0-9]+"; then
            echo "$p"
            return
        fi
    done
    echo "print_xlsx: no page of the sheet '$1' in the printout" >&2
    exit 1
}
shots=()
for sheet in "Results" "Needs attention" "Print"; do
    p=$(first_page "$sheet")
    pdftoppm -f "$p" -l "$p" -r "$dpi" -png result.pdf "page-$p"
    shots+=("$(ls page-"$p"*.png)")
done

mkdir -p "$(dirname "$out")"
"$convert" "${shots[@]}" -bordercolor '#9a9a9a' -border 1 \
    -background white -bordercolor white -border 0x10 -gravity NorthWest -append \
    -colors 32 -strip "PNG8:$out"
size_kb=$(($(stat -c %s "$out") / 1024))
echo "$out: $(identify -format '%wx%h' "$out"), ${size_kb} KB (pages of $pages: ${shots[*]})"
if [ "$size_kb" -ge 300 ]; then
    echo "print_xlsx: the picture is ${size_kb} KB; keep it under 300 KB (DPI=50 makes it smaller)" >&2
fi
