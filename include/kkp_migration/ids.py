"""What KKP's IDs look like (cluster and project IDs): lowercase letters and digits."""

ID_PATTERN = r"^[a-z0-9]{5,63}$"
