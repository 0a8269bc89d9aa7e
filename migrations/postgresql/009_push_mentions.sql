-- Whether any message a push window stands for mentions its recipient: the notification says
-- so (chatapp/notify/notification.py), and notification levels act on it.
ALTER TABLE push_windows ADD COLUMN mentioned BOOLEAN NOT NULL DEFAULT false;
