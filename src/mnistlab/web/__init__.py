"""The two web apps (the draw page's server and the lab) and their pages and static files."""
