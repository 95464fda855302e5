# t/mk/modules.mk
