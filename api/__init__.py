"""The Flask API: validates client requests, stores them, enqueues what is due."""
