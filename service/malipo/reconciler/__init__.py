"""The reconciler: polls unsettled payments and resumes interrupted submissions."""
