"""Rule plot_summary: the results table, resources and completeness figures (PNG and SVG)."""

from schelix_core.benchmark.workflow_io import logged, write_atomic

with logged(snakemake):
    import pandas as pd

    from schelix_core.benchmark.plots import completeness_figure, resources_figure, results_table_figure

    summary = pd.read_parquet(snakemake.input.summary)
    runs = pd.read_parquet(snakemake.input.runs)
    out = snakemake.output
    for fig, png, svg in (
        (results_table_figure(summary), out.results_png, out.results_svg),
        (resources_figure(summary), out.resources_png, out.resources_svg),
        (completeness_figure(runs), out.completeness_png, out.completeness_svg),
    ):
        write_atomic(png, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
        write_atomic(svg, lambda tmp: fig.savefig(tmp, format="svg"))
