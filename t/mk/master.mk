# t/mk/master.mk
