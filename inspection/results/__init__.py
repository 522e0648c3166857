"""What the model says about one image: the verdict with its anomaly map, defect regions and the overlay
picture. The published record itself is :mod:`inspection.schema`."""
