"""The API's routes, one router per concern: health, results, images, reviews, stats, live, admin, pages."""
