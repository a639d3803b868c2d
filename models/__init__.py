"""The OCEAN regressor that auditkit audits and retrains (see the regressor issue)."""
