"""The reports people look at, rendered from the published warehouse tables as of one snapshot:

    ncc11.py      the NCC-11 quarter report and the annual Informe de Costos Mayoristas
    meters.py     the metering month report (completeness heatmap, VEE findings, estimates)
    delivery.py   the Direct@mm delivery letters, one per participant and month

Each is one self-contained HTML file (charts as inline SVG from matplotlib, CSS inline, no script,
no request to anything) and a PDF of the same laid out by WeasyPrint (pdf.py; US Letter, page numbers),
written under `<lake>/reports/`. `source.py` pins every query of a report to one snapshot (the current one, or the
one a past run published: `--as-of RUN_ID`), so a report never mixes two publications."""
