# t/mk/unit.mk
