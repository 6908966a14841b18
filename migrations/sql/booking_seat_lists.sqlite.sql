-- A booking's seats become a JSON array of seat ids in the order requested,
-- where they were one comma-joined string. Seat ids are letters and digits
-- (A1, AB12), so no quoting is needed.
UPDATE bookings SET seat_ids = '["' || replace(seat_ids, ',', '","') || '"]';
