# t/mk/net.mk
