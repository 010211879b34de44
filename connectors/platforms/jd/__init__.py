"""JD (京东) POP orders on JOS: manifest, client, mapping, simulator."""
