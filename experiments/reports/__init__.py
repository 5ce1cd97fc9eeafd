"""Renderers: a run's record (record.json) -> its results markdown and plots, from the record
alone, so committed records can be rendered again without rerunning anything."""
