COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(B)/%.o)
COMMON_LIB := $(B)/libprison-common.a

$(COMMON_LIB): $(COMMON_OBJ)
	rm -f $@ && $(AR) rcs $@ $^

