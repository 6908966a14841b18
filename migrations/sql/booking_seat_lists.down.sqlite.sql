-- Back to the comma-joined string (m20261201_000005 down).
UPDATE bookings SET seat_ids = (SELECT group_concat(value, ',') FROM json_each(bookings.seat_ids));
