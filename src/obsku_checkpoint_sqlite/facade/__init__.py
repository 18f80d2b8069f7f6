"""The store's methods by subject, mixed into both faces' ``SqlAlchemyCheckpointStore``."""
