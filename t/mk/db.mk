# t/mk/db.mk
