"""`inspection bench`: the edge hardware benchmark integrators run before they buy a box."""
