-- Back to the comma-joined string (m20261201_000005 down). A USING clause
-- takes no subquery; seat ids are letters and digits, so dropping the JSON
-- punctuation of '["A1", "A2"]' leaves 'A1,A2'.
ALTER TABLE bookings ALTER COLUMN seat_ids TYPE varchar
    USING translate(seat_ids::text, '[]" ', '');
