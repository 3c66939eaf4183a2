"""``python -m bench.data``: training-loader throughput (cached vs uncached) and importer speed."""
