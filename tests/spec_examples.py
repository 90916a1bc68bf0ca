"""The four documented `%%model` examples (spec-language.md) and their parameter counts."""

EXAMPLES = {
    "mnist": ("""\
input 28x28
flatten
dense 128 relu
dropout 0.2
dense 10 softmax
optimizer adam lr=1e-3
loss sparse_categorical_crossentropy
metrics accuracy
""", 101770),
    "cnn": ("""\
input 28x28x1
conv2d 32 3x3 relu
maxpool 2
conv2d 64 3 relu
maxpool 2
flatten
dropout 0.5
dense 10 softmax
""", 34826),
    "two_heads": ("""\
img = input 8x8x1
meta = input 4
x = conv2d 8 3 relu same (img)
x = flatten
y = concat (x, meta)
digit = dense 10 softmax (y)
value = dense 1 (y)
outputs digit, value
loss digit=sparse_categorical_crossentropy value=mse
loss_weights digit=1.0 value=0.5
metrics digit=accuracy value=mae
""", 5767),
    "residual": ("""\
x = input 16
a = dense 16 relu
b = dense 16
s = add (x, b)
dense 1
""", 561),
}
