-- Where one face's best crop is stored (a bucket URI).
-- params: face_id=STRING:f1
SELECT best_crop_path FROM {{ faces }} WHERE face_id = @face_id
