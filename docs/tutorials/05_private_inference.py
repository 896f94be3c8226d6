# %% [markdown]
# # stub

# %%
print(1)
