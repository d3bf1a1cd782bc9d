"""Data-subject requests (GDPR Art. 15 access, Art. 17 erasure) and their deadlines."""
