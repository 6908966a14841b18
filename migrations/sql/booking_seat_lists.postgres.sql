-- A booking's seats become a JSON array of seat ids in the order requested,
-- where they were one comma-joined string.
ALTER TABLE bookings ALTER COLUMN seat_ids TYPE jsonb
    USING to_jsonb(string_to_array(seat_ids, ','));
