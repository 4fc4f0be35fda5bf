#!/usr/bin/env bash
# Makes docs/result-xlsx.png, docs/operator-guide.md's picture of the result workbook as a spreadsheet program
# shows it: the sample salary file paid through the embedded sandbox (no real money moves), written
# with --out result.xlsx, rendered by LibreOffice Calc. From top to bottom: the Results sheet's
# first rows (the input's columns, then payrun's), the Summary sheet, the Needs attention sheet.
#
# Needs: cargo (or PAYRUN=/path/to/payrun), LibreOffice Calc 7.4 or newer (soffice), pdftoppm and
# pdftotext (poppler-utils), ImageMagick (convert and identify; CONVERT=/path/to/convert picks one).
# On Debian or Ubuntu:
#   apt-get install -y libreoffice-calc-nogui poppler-utils imagemagick
#
# Usage: scripts/screenshot_xlsx.sh [OUT.png]        (default: docs/result-xlsx.png)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/docs/result-xlsx.png}
case "$out" in /*) ;; *) out=$PWD/$out ;; esac
dpi=${DPI:-80}

for tool in soffice pdftoppm pdftotext pdfinfo "${CONVERT:-convert}" identify; do
    if ! command -v "$tool" >/dev/null; then
        echo "screenshot_xlsx: $tool not found; install: apt-get install -y libreoffice-calc-nogui poppler-utils imagemagick" >&2
        exit 1
    fi
done

payrun=${PAYRUN:-}
if [ -z "$payrun" ]; then
    (cd "$root" && cargo build --release --quiet)
    payrun=$root/target/release/payrun
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root/samples/salary-2026-11.csv" "$work/"
cd "$work"

# A scratch journal: the data directory is inside this scratch folder (never the user's own
# journal, where a second run of the sample would also be refused as already paid), and --state
# names its payrun directory, which is then the default one, so the workbook shows the plain
# commands. No payrun.toml: the defaults (Asia/Kolkata). The realistic sandbox fails a few payouts
# at the bank, as banks do: exit 2 is what we want to picture.
export XDG_DATA_HOME=$work/data
code=0
env -u PAYRUN_CONFIG -u PAYRUN_STATE "$payrun" run salary-2026-11.csv --state "$XDG_DATA_HOME/payrun" \
    --out result.xlsx --rate 100 --burst 10 >run.log 2>&1 || code=$?
if [ "$code" -ne 0 ] && [ "$code" -ne 2 ]; then
    cat run.log >&2
    echo "screenshot_xlsx: payrun run exited $code" >&2
    exit 1
fi

# Each sheet as one PDF page, at its real size.
soffice --headless --norestore \
    --convert-to 'pdf:calc_pdf_Export:{"SinglePageSheets":{"type":"boolean","value":"true"}}' \
    result.xlsx >soffice.log 2>&1
[ -s result.pdf ] || { cat soffice.log >&2; echo "screenshot_xlsx: no PDF from soffice" >&2; exit 1; }

# Results: the heading and the first 20 rows (15 pt each), cut where payrun's columns begin (at the heading external_ref) into
# two halves stacked, so the picture stays readable.
page_w=$(pdfinfo -f 1 -l 1 result.pdf | awk '/^Page +1 size:/ {print $4}')
pdftotext -f 1 -l 1 -bbox result.pdf words.html
split=$(awk -F'"' '/>external_ref</ {print $2; exit}' words.html)
[ -n "$split" ] || { echo "screenshot_xlsx: no external_ref heading on the Results page" >&2; exit 1; }
px() { awk -v pt="$1" -v dpi="$dpi" 'BEGIN {printf "%d", pt * dpi / 72}'; }
rows_h=$(px $((15 * 21)))
left_w=$(px "$split")
right_w=$(($(px "$page_w") - left_w))
pdftoppm -f 1 -l 1 -r "$dpi" -x 0 -y 0 -W "$left_w" -H "$rows_h" -png result.pdf left
pdftoppm -f 1 -l 1 -r "$dpi" -x "$left_w" -y 0 -W "$right_w" -H "$rows_h" -png result.pdf right
pdftoppm -f 2 -l 3 -r "$dpi" -png result.pdf sheet

mkdir -p "$(dirname "$out")"
"${CONVERT:-convert}" left-1.png right-1.png sheet-2.png sheet-3.png \
    -background white -bordercolor white -border 0x12 -gravity NorthWest -append \
    -bordercolor '#9a9a9a' -border 1 -colors 48 -strip "PNG8:$out"
echo "$out: $(identify -format '%wx%h' "$out"), $(($(stat -c %s "$out") / 1024)) KB"
