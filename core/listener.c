/* core/listener.c */
#include "core.h"
