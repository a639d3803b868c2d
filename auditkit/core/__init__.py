"""The audit itself: scoring work, executors, the store, statistics, results and their renderers."""
