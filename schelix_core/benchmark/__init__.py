"""The benchmark around scHelix: data, QC, the method contract, metrics, aggregation, plots."""
