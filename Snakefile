# scHelix benchmark: datasets x methods x seeds -> QC -> integration -> scIB metrics -> report.
from snakemake.utils import min_version, validate

min_version("9.0")


# The embedded default, unless --configfile gave a whole configuration (whose datasets must
# not be merged with the default's).
if "datasets" not in config:

    configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/qc.smk"
include: "workflow/rules/integrate.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
