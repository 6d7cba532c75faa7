"""File formats around a submission: RLE, probability files, competition CSVs."""
